"""Errors the CLI renders as one line: what is wrong, and what is allowed."""


class CausalCliError(Exception):
    """Base class: every expected failure the user can fix from the command line."""

    kind = "error"

    def one_line(self) -> str:
        text = " ".join(str(self).split())
        return f"{self.kind}: {text}"


class ConfigError(CausalCliError):
    kind = "config error"


class GraphError(CausalCliError):
    kind = "graph error"


class DataError(CausalCliError):
    kind = "data error"


class IdentificationError(CausalCliError):
    kind = "identification error"


class EstimationError(CausalCliError):
    kind = "estimation error"
