"""Errors the CLI renders as one line: what is wrong, and what is allowed."""


class CausalCliError(Exception):
    """Base class: every expected failure the user can fix from the command line."""

    kind = "error"

    def one_line(self) -> str:
        text = " ".join(str(self).split())
        return f"{self.kind}: {text}"


class UsageError(CausalCliError):
    """The command line itself: an unknown command or option, a missing argument."""

    kind = "usage error"


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


class OutputError(CausalCliError, OSError):
    """A run-folder file could not be written (disk full, read-only, a symbolic link planted in the folder)."""

    kind = "output error"


#: every failure is one line on stderr, ``causal: <kind> error: <message>`` (``kind`` above), and one of
#: these exit statuses: one per outcome, whatever the error type
EXIT_OK = 0
#: the run started (a run folder was claimed) and failed: its results.json says ``failed``
EXIT_FAILED = 1
#: refused before anything ran (usage, an unknown option, a config Hydra cannot compose): nothing written
EXIT_REFUSED = 2
#: stopped by a signal: 128 + the signal number (130 Ctrl-C, 143 SIGTERM); results.json says ``interrupted``
EXIT_SIGNAL_BASE = 128
