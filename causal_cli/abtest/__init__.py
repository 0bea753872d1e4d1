"""Randomized experiments (A/B tests): estimates, checks, multiple testing and planning.

Pure functions and small classes over arrays and frames; no I/O and no printing.
"""
