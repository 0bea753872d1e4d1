"""causal-cli: declarative causal inference experiments on the command line."""

__version__ = "0.1.0"
