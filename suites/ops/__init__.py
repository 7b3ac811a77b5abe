"""The operator library (beyond the seed document's sections): torch's OpInfo database as a generated
lane, and hand-written oracles for the families it checks weakly or not at all (linalg, fft, special,
distributions, random state, search/histogram/cumulative/bitwise ops)."""
