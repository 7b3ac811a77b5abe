"""Planted bugs: how the suite is judged. Each mutant patches the torch under test with one realistic
bug; a good suite fails on every mutant and passes on the unpatched torch.

    python -m tests.mutants.run                 # every mutant against its target, then a table
    python -m tests.mutants.run -k argmax       # a selection (a name, or comma-separated substrings)
    python -m tests.mutants.run --sections      # each mutant against its whole owning sections (slow)
    python -m tests.mutants.run --control       # each distinct target once without a plant: must pass
    pytest suites/tensors -p tests.mutants.plant --plant argmax_last_tie   # one by hand

Layout: ``base.py`` (the registry, ``Mutant`` and the patching helpers), ``catalogue.py`` (the first
mutants, and the import of every family module), ``m_<section>.py`` (later families), ``plant.py`` (the
pytest plugin), ``run.py`` (the runner). A mutant's ``sections`` name the suite folders that own catching
it; its optional ``paths`` (files or node ids) and ``select`` (a ``-k`` expression) are where the runner
looks, so one mutant costs one module rather than a section.
"""
