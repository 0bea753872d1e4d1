"""Who benefits: segment effects, per-unit effects (CATE), their calibration and targeting.

Everything is built on one set of cross-fitted doubly robust (AIPW) scores, so any backdoor design
gets the same heterogeneity stage: :mod:`analysis` runs it, the other modules are its parts.
"""
