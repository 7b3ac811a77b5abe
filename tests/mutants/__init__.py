"""Planted bugs: how the suite is judged. Each mutant patches the torch under test with one realistic
bug; a good suite fails on every mutant and passes on the unpatched torch.

    python -m tests.mutants.run                 # every mutant against its section(s), then a table
    python -m tests.mutants.run -k argmax       # a selection
    pytest suites/tensors -p tests.mutants.plant --plant argmax_last_tie   # one by hand
"""
