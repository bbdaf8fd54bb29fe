"""Synthetic data shared by the demo, the benchmarks and the tests.

``population``: a deterministic population in households with a spine and damaged incoming
records; ``names``: its name, place and street tables; ``world``: the family-court world the
demo pushes (a spine with address history and both Cafcass feeds, with its ground truth).
Imports ``contracts`` and the shipped synthetic postcode table of pseudonymise; nothing in
the services imports it.
"""
