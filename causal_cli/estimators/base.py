"""Estimator base class: scikit-learn conventions on plain numpy arrays.

``__init__`` only stores keyword parameters; ``fit`` learns the effect and its uncertainty and
returns ``self``; learned state ends in ``_``. Refuters call :meth:`estimate` (point estimate only)
on modified copies of :class:`EstimationData`, so no pandas work happens in their hot loop.
"""

from __future__ import annotations

from dataclasses import MISSING, Field, dataclass, field, fields, replace
from enum import Enum
from functools import cache
from statistics import NormalDist
from typing import Any, ClassVar

import numpy as np

from causal_cli.errors import EstimationError
from causal_cli.parameters import Parameters, signature
from causal_cli.schema import CIConfig, EstimatorConfig


@dataclass
class EstimationData:
    """Treatment, outcome and the identified adjustment set as float arrays.

    The adjustment set is kept once, column-major, as :attr:`columns` (``[1, X]`` transposed: one row per
    covariate after a row of ones); ``X`` and :attr:`design` are views of it. Modified copies (a permuted
    treatment, a new outcome) share it, so refuter simulations neither copy nor re-lay-out the covariates,
    and tall, skinny products over it are ~10x faster than over a row-major design.
    """

    t: np.ndarray
    y: np.ndarray
    X: np.ndarray
    covariates: tuple[str, ...] = ()
    instruments: np.ndarray | None = None
    instrument_names: tuple[str, ...] = ()
    mediators: np.ndarray | None = None
    mediator_names: tuple[str, ...] = ()
    #: observation (sampling) weights, finite and >= 0 (``data.weights``); None = every row weighs 1
    w: np.ndarray | None = None
    #: cluster id of each row as integer codes 0..G-1 (``data.cluster``); None = rows are independent
    cluster: np.ndarray | None = None
    #: declared effect modifiers (``graph.effect_modifiers``) as float columns, and their names
    modifiers: np.ndarray | None = None
    modifier_names: tuple[str, ...] = ()
    _columns: np.ndarray | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return self.t.shape[0]

    @property
    def has_both_groups(self) -> bool:
        """Whether there are treated and control rows (else no effect can be estimated)."""
        return bool(self.t.min() != self.t.max())

    @property
    def columns(self) -> np.ndarray:
        """``[1, X]`` transposed, C-contiguous ``(p + 1, n)``; built once, then ``X`` is a view of it."""
        if self._columns is None:
            columns = np.empty((self.X.shape[1] + 1, self.n))
            columns[0] = 1.0
            columns[1:] = self.X.T
            self._columns, self.X = columns, columns[1:].T
        return self._columns

    @property
    def design(self) -> np.ndarray:
        """``[1, X]`` as an ``(n, p + 1)`` view of :attr:`columns`."""
        return self.columns.T

    def with_treatment(self, t: np.ndarray) -> EstimationData:
        return replace(self, t=np.asarray(t, dtype=float), _columns=self.columns)

    def with_outcome(self, y: np.ndarray) -> EstimationData:
        return replace(self, y=np.asarray(y, dtype=float), _columns=self.columns)

    def with_covariate(self, column: np.ndarray, name: str) -> EstimationData:
        old = self.columns
        columns = np.empty((old.shape[0] + 1, self.n))
        columns[:-1] = old
        columns[-1] = column
        return self.with_covariate_row(columns, name)

    def with_covariate_row(self, columns: np.ndarray, name: str) -> EstimationData:
        """These data with covariate ``name`` added: ``columns`` is :attr:`columns` with that covariate's
        values as one more row, already written (e.g. into the spare row of :func:`causal_cli.simulate.spare_row`)."""
        return replace(self, X=columns[1:].T, covariates=(*self.covariates, name), _columns=columns)

    def take(self, rows: np.ndarray) -> EstimationData:
        def pick(a):
            return None if a is None else a[rows]

        columns = self.columns[:, rows]
        return replace(
            self,
            t=self.t[rows],
            y=self.y[rows],
            X=columns[1:].T,
            instruments=pick(self.instruments),
            mediators=pick(self.mediators),
            w=pick(self.w),
            cluster=pick(self.cluster),
            modifiers=pick(self.modifiers),
            _columns=columns,
        )

    @property
    def n_clusters(self) -> int | None:
        return None if self.cluster is None else int(self.cluster.max()) + 1

    @property
    def weights(self) -> np.ndarray:
        """The observation weights, ones when there are none."""
        return np.ones(self.n) if self.w is None else self.w


def influence_se(influence: np.ndarray, data: EstimationData) -> float:
    """The standard error ``sqrt(sum psi_i^2) / n`` of an estimate with per-row influence ``psi`` (scaled
    so that ``estimate - truth ~ mean(psi)``); with ``data.cluster``, the cluster-robust CR1 version
    ``sqrt(G / (G - 1) * sum_g (sum_{i in g} psi_i)^2) / n`` (Liang & Zeger 1986; Cameron & Miller 2015)."""
    influence = np.asarray(influence, dtype=float)
    if data.cluster is None:
        return float(np.sqrt(np.sum(influence**2)) / data.n)
    sums = np.bincount(data.cluster, weights=influence)
    groups = int(np.count_nonzero(np.bincount(data.cluster)))
    if groups < 2:
        return float("nan")
    return float(np.sqrt(groups / (groups - 1) * np.sum(sums**2)) / data.n)


#: :meth:`BaseEstimator.compact` keeps fitted arrays below this size and below the row count (coefficients,
#: not per-row values)
COMPACT_MAX_ELEMENTS = 4096


class BaseEstimator(Parameters):
    config_class: ClassVar[type] = EstimatorConfig
    name: ClassVar[str] = ""
    #: which identified estimand the method needs: backdoor, iv, frontdoor or none
    identification: ClassVar[str] = "backdoor"
    #: whether ``_std_error`` gives an analytic standard error
    has_analytic_se: ClassVar[bool] = False
    #: whether the point estimate and SE honour ``data.weights`` (else the estimator refuses them)
    accepts_weights: ClassVar[bool] = False
    #: whether ``_std_error`` is cluster-robust under ``data.cluster`` (else the SE is a cluster bootstrap)
    cluster_robust_se: ClassVar[bool] = False

    @classmethod
    def param_defaults(cls) -> dict[str, Any]:
        """The constructor's parameters and defaults, derived from :attr:`config_class`: every field but
        ``name``, the ``ci`` block flattened to ``ci_level``, ``ci_method``, ``num_bootstrap``, and
        ``random_state``. Adding a parameter is one field in the dataclass (and its YAML default)."""
        out: dict[str, Any] = {}
        for spec in _config_fields(cls.config_class):
            value = spec.default_factory() if spec.default_factory is not MISSING else spec.default
            if spec.name == "ci":
                out.update({param: getattr(value, key) for key, param in CI_PARAMS.items()})
            elif spec.name != "name":
                out[spec.name] = value.value if isinstance(value, Enum) else value
        out["random_state"] = 0
        return out

    @classmethod
    def from_config(cls, cfg, random_state=0) -> BaseEstimator:
        """Build from an estimator config node (its ``ci`` block flattens to ``ci_*``)."""
        from omegaconf import OmegaConf

        values = (
            OmegaConf.to_container(cfg, resolve=True, enum_to_str=True) if not isinstance(cfg, dict) else cfg
        )
        values = dict(values)
        values.pop("name", None)
        ci = values.pop("ci", {}) or {}
        values.update({param: ci[key] for key, param in CI_PARAMS.items() if key in ci})
        return cls(**values, random_state=random_state)

    def to_config(self):
        """The config dataclass these parameters stand for; its ``__post_init__`` checks them (the one
        place parameters are validated). A ConfigError names the key as ``estimator.<key>``."""
        from causal_cli.errors import ConfigError

        values = self.get_params()
        values.pop("random_state")
        try:
            ci = CIConfig(**{key: values.pop(param) for key, param in CI_PARAMS.items()})
            return self.config_class(ci=ci, **values)
        except ConfigError as exc:
            raise ConfigError(f"estimator.{exc}") from None

    def _estimate(self, data: EstimationData) -> float:
        """The point estimate; may keep state for ``_std_error`` and diagnostics."""
        raise NotImplementedError

    def _point_estimate(self, data: EstimationData) -> float:
        """The point estimate alone, for :meth:`estimate` (refuter simulations); no state for ``_std_error``
        is needed, so an estimator may take a cheaper route to the same number."""
        return self._estimate(data)

    def _std_error(self, data: EstimationData) -> float | None:
        """An analytic standard error for the last ``_estimate``, if the method has one."""
        return None

    def compact(self) -> BaseEstimator:
        """A copy with the fitted numbers (``effect_``, ``warm_start_``, ...) but no per-row arrays.

        What refuter simulations need (they re-fit a fresh clone); at a million rows it leaves ~100 MB of
        matches, scores and standard-error terms behind.
        """
        light = self.clone()
        limit = min(COMPACT_MAX_ELEMENTS, getattr(self, "n_rows_", COMPACT_MAX_ELEMENTS))
        for key, value in vars(self).items():
            small = not isinstance(value, np.ndarray) or value.size < limit
            if key.endswith("_") and not key.startswith("_") and small:
                setattr(light, key, value)
        return light

    def estimate(self, data: EstimationData) -> float:
        """Point estimate only, on a fresh clone: the fast path refuters use."""
        fresh = self.clone()
        fresh.warm_start_ = getattr(self, "warm_start_", None)
        return float(fresh._point_estimate(data))

    def fit(self, data: EstimationData, executor=None, progress=None) -> BaseEstimator:
        """Estimate the effect and its confidence interval.

        ``executor`` (a :class:`causal_cli.simulate.Executor`; default: this process) and ``progress`` only
        matter for bootstrap intervals (they run and show the re-fits); they do not change any number.
        """
        self._check(data)
        self.n_rows_ = data.n
        self.effect_ = float(self._estimate(data))
        if not np.isfinite(self.effect_):
            raise EstimationError(f"estimator '{self.name}' returned a non-finite estimate ({self.effect_})")
        method = self.ci_method
        clustered = data.cluster is not None
        if clustered and not self.cluster_robust_se:
            method = "bootstrap"  # no cluster-robust analytic SE: resample whole clusters instead
        se = self._std_error(data) if method == "analytic" else None
        z = NormalDist().inv_cdf(0.5 + self.ci_level / 2)
        if se is not None and np.isfinite(se):
            self.std_error_ = float(se)
            self.ci_low_ = self.effect_ - z * se
            self.ci_high_ = self.effect_ + z * se
            self.ci_method_ = "analytic"
            self.se_type_ = "cluster-robust (CR1)" if clustered else "analytic"
        else:
            boots = self.bootstrap_estimates(data, self.num_bootstrap, executor, progress)
            boots = boots[np.isfinite(boots)]
            if boots.size < 2:
                raise EstimationError(
                    f"estimator '{self.name}': only {boots.size} of {self.num_bootstrap} bootstrap resamples "
                    "gave an estimate; no bootstrap confidence interval"
                )
            self.std_error_ = float(np.std(boots, ddof=1))
            alpha = 1 - self.ci_level
            self.ci_low_, self.ci_high_ = (float(v) for v in np.quantile(boots, [alpha / 2, 1 - alpha / 2]))
            self.ci_method_ = "bootstrap"
            self.se_type_ = "cluster bootstrap" if clustered else "bootstrap"
        return self

    def bootstrap_estimates(self, data: EstimationData, num: int, executor=None, progress=None) -> np.ndarray:
        """Estimates on ``num`` resamples of the rows (NaN where a resample gives none), run by ``executor``."""
        from causal_cli.simulate import SerialExecutor

        seed = self.random_state if isinstance(self.random_state, np.random.SeedSequence) else None
        root = seed or np.random.SeedSequence(0 if self.random_state is None else int(self.random_state))
        streams = np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, 0xB007)).spawn(num)
        executor = executor or SerialExecutor()
        return executor.run(Resample(), self, data, streams, progress, label=f"bootstrap CI {self.name}")

    def _check(self, data: EstimationData) -> None:
        self.to_config()
        if data.w is not None and not self.accepts_weights:
            from causal_cli import registry

            takers = [n for n in registry.ESTIMATORS if registry.load("estimator", n).accepts_weights]
            raise EstimationError(
                f"data.weights: estimator '{self.name}' cannot use observation weights; "
                f"allowed with data.weights: {', '.join(takers)}"
            )
        treated = int(data.t.sum())
        if treated == 0 or treated == data.n:
            group = "control" if treated == 0 else "treated"
            raise EstimationError(f"every row is {group}; an effect needs both treated and control rows")

    def summary(self) -> dict[str, Any]:
        """Method-specific facts worth reporting (units dropped, weights, ...)."""
        return {}

    def caveats(self) -> list[str]:
        """One-line warnings about the fitted estimate itself (units dropped and the estimand that results,
        heavy weights, ...), shown prominently next to the effect; [] when there are none. Call after
        ``fit`` and before ``compact``."""
        return []


#: the estimator config's ``ci`` block -> the constructor parameters it flattens to
CI_PARAMS = {"level": "ci_level", "method": "ci_method", "num_bootstrap": "num_bootstrap"}


@cache
def _config_fields(config_class: type) -> tuple[Field, ...]:
    return tuple(fields(config_class))


def resample(data: EstimationData, rng: np.random.Generator) -> EstimationData | None:
    """``n`` rows drawn with replacement (with ``data.cluster``: ``G`` whole clusters drawn with replacement,
    each copy a cluster of its own); None when they are all treated or all control."""
    if data.cluster is None:
        sample = data.take(rng.integers(0, data.n, data.n))
        return sample if sample.has_both_groups else None
    groups = data.n_clusters
    order = np.argsort(data.cluster, kind="stable")
    starts = np.searchsorted(data.cluster[order], np.arange(groups + 1))
    drawn = rng.integers(0, groups, groups)
    sizes = starts[drawn + 1] - starts[drawn]
    rows = order[np.concatenate([np.arange(starts[g], starts[g + 1]) for g in drawn])]
    sample = data.take(rows)
    sample.cluster = np.repeat(np.arange(groups), sizes)
    return sample if sample.has_both_groups else None


class Resample:
    """The bootstrap's modification, for a :class:`causal_cli.simulate.Executor`."""

    def modify_task(
        self, data: EstimationData, index: int, rng: np.random.Generator
    ) -> EstimationData | None:
        return resample(data, rng)


BaseEstimator.__signature__ = signature(BaseEstimator)
