"""The runtime layer: the only code that starts processes, pools or clusters.

Executors run a study's independent simulations (refuter simulations, bootstrap re-fits) and implement
:class:`causal_cli.simulate.Executor`; the results are the same whichever runs them:

- :class:`~causal_cli.simulate.SerialExecutor` (core): in this process;
- :class:`~causal_cli.runtime.local.LocalProcessExecutor`: this machine's cores (the default);
- :class:`~causal_cli.runtime.ray_executor.RayExecutor`: a Ray cluster (``refuters.backend=ray``).
"""

from __future__ import annotations

from collections.abc import Callable


def make_executor(
    n_jobs: int | None = -1,
    backend: str = "local",
    address: str | None = None,
    notice: Callable[[str], None] | None = None,
):
    """The executor for ``refuters.n_jobs`` / ``refuters.backend`` / ``refuters.address``."""
    from causal_cli.errors import ConfigError
    from causal_cli.schema import REFUTER_BACKENDS

    if backend == "local":
        from causal_cli.runtime.local import LocalProcessExecutor

        return LocalProcessExecutor(n_jobs, notice=notice)
    if backend == "ray":
        from causal_cli.runtime.ray_executor import RayExecutor

        return RayExecutor(address, notice=notice)
    raise ConfigError(f"refuters.backend={backend!r}; allowed: {', '.join(REFUTER_BACKENDS)}")
