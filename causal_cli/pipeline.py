"""Orchestration only: graph -> data -> identify -> estimate -> refute. No printing, no output files."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from causal_cli import provenance, registry
from causal_cli.errors import ConfigError, DataError
from causal_cli.graph import CausalGraph
from causal_cli.results import EffectResult, RunResult
from causal_cli.schema import REFUTER_SETTINGS


class NullProgress:
    def add(self, description: str, total: int):
        return None

    def advance(self, task, n: int = 1) -> None:
        pass


def build_estimation_data(frame, graph, identification, empty=np.empty):
    """The estimation data of ``frame``; ``empty(shape)`` allocates the treatment, outcome and covariate
    arrays (e.g. in memory shared with worker processes: :meth:`LocalProcessExecutor.data_allocator`)."""
    import pandas as pd

    from causal_cli.data import CLUSTER, WEIGHTS, expand_columns
    from causal_cli.estimators.base import EstimationData
    from causal_cli.simulate import give_room

    def fill(out, name) -> None:
        """``frame[name]`` as floats into ``out``; a float64 column of the frame then becomes a view of
        ``out`` (the same values), so the frame and the estimation data do not each hold a copy (at 10M
        rows, 76 MB a column)."""
        column = frame[name]
        out[:] = column.to_numpy(dtype=float)
        if column.dtype == np.float64:
            frame[name] = pd.Series(out, index=frame.index, name=name, copy=False)

    def block(names, first=0, room=0):
        """``(n, p)`` float view of a ``(first + p, n)`` array filled column by column (one copy of the
        data; ``frame[names].to_numpy()`` made two), laid out as that call did (column-major); allocated
        with ``room`` more rows after it (:func:`causal_cli.simulate.give_room`)."""
        names = expand_columns(frame, names) if names else []
        whole = empty((first + len(names) + room, len(frame)))
        out = whole[: first + len(names)]
        for row, name in enumerate(names, start=first):
            fill(out[row], name)
        if room:
            give_room(out, whole)
        return out, out[first:].T

    def vector(name):
        if empty is np.empty:
            return frame[name].to_numpy(dtype=float)
        out = empty((len(frame),))
        fill(out, name)
        return out

    # the adjustment set goes straight into EstimationData.columns ([1, X] transposed), not copied there later;
    # with a row of room after it, untouched until a simulation adds a covariate there (random common cause)
    columns, X = block(identification.adjustment_set, first=1, room=1)
    columns[0] = 1.0
    return EstimationData(
        t=vector(graph.treatment),
        y=vector(graph.outcome),
        X=X,
        _columns=columns,
        covariates=tuple(expand_columns(frame, identification.adjustment_set)),
        instruments=block(identification.instruments)[1] if identification.instruments else None,
        instrument_names=tuple(expand_columns(frame, identification.instruments)),
        mediators=block(identification.mediators)[1] if identification.mediators else None,
        mediator_names=tuple(expand_columns(frame, identification.mediators)),
        w=frame[frame.attrs[WEIGHTS]].to_numpy(dtype=float) if frame.attrs.get(WEIGHTS) else None,
        cluster=pd.factorize(frame[frame.attrs[CLUSTER]])[0] if frame.attrs.get(CLUSTER) else None,
        modifiers=block(graph.effect_modifiers)[1] if getattr(graph, "effect_modifiers", None) else None,
        modifier_names=tuple(expand_columns(frame, getattr(graph, "effect_modifiers", None) or [])),
    )


def refuter_settings(cfg) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``cfg.refuters`` into (refuter name -> config, settings such as n_jobs)."""
    node = cfg.get("refuters") or {}
    chosen = {k: v for k, v in node.items() if k not in REFUTER_SETTINGS}
    settings = {k: node[k] for k in REFUTER_SETTINGS if k in node}
    return chosen, settings


def stream_seed(cfg) -> int:
    """Root of the estimator's, bootstrap's and refuters' random streams.

    ``cfg.seed`` alone while ``dgp.seed`` follows it (the default ``dgp.seed: ${seed}``); a sweep over
    ``dgp.seed`` alone mixes both in, so every replication also gets its own refuter and bootstrap
    streams. A pure function of the two seeds: each job stays reproducible on its own.
    """
    seed = int(cfg.seed)
    dgp_seed = (cfg.get("dgp") or {}).get("seed")
    if dgp_seed is None or int(dgp_seed) == seed:
        return seed
    return int(np.random.SeedSequence([seed, int(dgp_seed)]).generate_state(1)[0])


def graph_record(graph) -> dict[str, Any]:
    """The graph as results.json records it."""
    return {
        "name": graph.name,
        "nodes": graph.nodes,
        "edges": [f"{a} -> {b}" for a, b in graph.edges],
        "unobserved": graph.unobserved,
        "outcome_units": graph.outcome_units,
    }


def make_executor(settings: dict[str, Any], progress=None):
    """The executor of the refuter simulations and bootstrap CIs (``refuters.n_jobs``, ``.backend``,
    ``.address``); its one-line notices (a long run ahead) go to ``progress.notice`` when it has one."""
    from causal_cli import runtime

    return runtime.make_executor(
        int(settings.get("n_jobs", -1)),
        str(settings.get("backend") or "local"),
        settings.get("address") or None,
        notice=getattr(progress, "notice", None),
    )


def run(cfg, progress=None, base_dir: str | None = None, frame=None, executor=None) -> RunResult:
    """The study ``cfg`` describes; ``frame`` (a pandas DataFrame) replaces the configured data source;
    simulations run on ``executor`` (default: from ``cfg.refuters``)."""
    from causal_cli.bounds import check_against_data
    from causal_cli.data import CLUSTER, WEIGHTS
    from causal_cli.data.checks import check_overlap
    from causal_cli.estimators.naive import naive_effect
    from causal_cli.identify import identify

    progress = progress or NullProgress()
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 4)
        clock = now

    seed = stream_seed(cfg)
    graph = CausalGraph.from_config(cfg.graph, base_dir)
    if cfg.graph.get("design", "observational") == "randomized":
        return run_randomized(cfg, graph, seed, base_dir, frame)
    estimator_cls = registry.load("estimator", cfg.estimator.name)
    chosen, settings = refuter_settings(cfg)
    refuters = [registry.load("refuter", name).from_config(rcfg) for name, rcfg in chosen.items()]
    estimator = estimator_cls.from_config(cfg.estimator, random_state=np.random.SeedSequence([seed, 0xE57]))
    lap("setup")

    executor = executor or make_executor(settings, progress)
    simulations = max([r.num_tasks() for r in refuters] + [_bootstrap_fits(estimator)])
    modules = {type(r).__module__ for r in refuters} | {type(estimator).__module__}
    rows = _rows_before_loading(cfg, frame)
    if rows is not None and hasattr(executor, "warm_up"):
        executor.warm_up(rows * simulations, modules)  # workers start while the data are made
    dataset = _dataset(cfg, graph, base_dir, frame)
    frame = dataset.frame
    missing = [c for c in graph.observed_nodes if c not in frame.columns]
    if missing:
        raise DataError(f"column(s) {', '.join(missing)} named in the graph are not in the data")
    data_hash = provenance.frame_hash(frame, graph.observed_nodes)
    data_files = provenance.source_file_hashes(cfg.data, base_dir, cfg.graph)
    lap("data")

    if rows is None and hasattr(executor, "warm_up"):
        executor.warm_up(len(frame) * simulations, modules)  # workers start while identification runs
    identification = identify(graph, estimator_cls.identification, cfg.identification.backdoor_method)
    lap("identify")

    data = build_estimation_data(
        frame, graph, identification, _data_allocator(executor, len(frame) * simulations)
    )
    check_against_data(cfg, data.t)  # options that would silently give a wrong number on these data
    naive, naive_se = naive_effect(data)  # weighted / cluster-robust with data.weights / data.cluster
    estimator.fit(data, executor, progress)
    lap("estimate")

    sensitivity = analytic_sensitivity(data, identification.kind, estimator)
    lap("sensitivity")
    heterogeneity = heterogeneity_stage(cfg, frame, graph, identification, data, dataset, seed)
    if heterogeneity is not None:
        lap("heterogeneity")
    if dataset.info:
        dataset.info.pop("unit_effects", None)  # read by the heterogeneity stage only: 76 MB at 10M rows

    diagnostics, diagnostic_notes = _diagnostics(cfg, frame, graph, data, estimator)
    check_overlap(diagnostics.overlap, adjusts=estimator_cls.identification != "none")
    lap("diagnostics")

    comparisons = [
        _compare(name, node, graph, frame, seed, cfg.identification.backdoor_method, executor, progress)
        for name, node in (cfg.get("compare") or {}).items()
    ]
    lap("compare")

    estimator_details = estimator.summary()
    estimator_caveats = list(estimator.caveats())
    estimator_caveats += _weight_caveats(diagnostics, estimator, estimator_caveats)
    estimator = estimator.compact()  # the refuters re-fit fresh clones: free the fit's per-row arrays first

    refutations = _refute(refuters, estimator, data, seed, executor, progress, lap)

    target = str(getattr(estimator.target_units, "value", estimator.target_units))
    from causal_cli.references import resolve as resolve_reference

    ref = resolve_reference(cfg, dataset, target, base_dir, frame, graph.treatment)
    references, reference = ref.values, ref.value
    return RunResult(
        treatment=graph.treatment,
        outcome=graph.outcome,
        estimator=estimator.name,
        target_units=target,
        n_rows=int(len(frame)),
        identification=identification.kind,
        adjustment_set=identification.adjustment_set,
        instruments=identification.instruments,
        mediators=identification.mediators,
        naive_estimate=naive,
        naive_std_error=naive_se,
        estimate=estimator.effect_,
        std_error=estimator.std_error_,
        ci_low=estimator.ci_low_,
        ci_high=estimator.ci_high_,
        ci_level=float(estimator.ci_level),
        ci_method=estimator.ci_method_,
        se_method=getattr(estimator, "se_type_", None),
        weights_column=frame.attrs.get(WEIGHTS),
        cluster_column=frame.attrs.get(CLUSTER),
        n_clusters=data.n_clusters,
        reference=reference,
        reference_kind=ref.kind if reference is not None else None,
        references=references,
        reference_estimand=ref.estimand,
        reference_source=ref.source,
        seed=int(cfg.seed),
        refutations=refutations,
        comparisons=comparisons,
        estimator_details=estimator_details,
        caveats=estimator_caveats,
        graph=graph_record(graph),
        data_description=dataset.description,
        notes=list(dataset.notes) + diagnostic_notes,
        diagnostics=diagnostics,
        timings=timings,
        data_hash=data_hash,
        data_files=data_files,
        sensitivity=sensitivity,
        heterogeneity=heterogeneity,
    )


def _refute(refuters, estimator, data, seed: int, executor, progress, lap) -> list:
    """Each refuter's refutation in turn; then the executor hands back the memory it kept for simulations
    (``release``, if it has one: the local executor keeps the heap between refuters at 10M rows)."""
    refutations = []
    try:
        for i, refuter in enumerate(refuters):
            refutations.append(
                refuter.refute(
                    estimator, data, estimator.effect_, estimator.std_error_, seed + i, executor, progress
                )
            )
            lap(f"refute:{refuter.name}")
    finally:
        release = getattr(executor, "release", None)
        if release is not None:
            release()
    return refutations


def heterogeneity_stage(cfg, frame, graph, identification, data, dataset, seed):
    """Who benefits (causal_cli.heterogeneity), when effect modifiers are declared; None otherwise.

    It needs a backdoor design (the doubly robust scores adjust for the adjustment set); on another
    design it is skipped with a note rather than reporting effects that are not identified.
    """
    from causal_cli.heterogeneity import analysis

    if not analysis.enabled(cfg, graph):
        return None
    if identification.kind != "backdoor":
        dataset.notes.append(
            f"heterogeneity stage skipped: it needs a backdoor design, this run's is {identification.kind}"
        )
        return None
    truth = (dataset.info or {}).get("unit_effects")
    if truth is not None and len(truth) != len(frame):
        truth = None
    return analysis.analyze(cfg, frame, graph, data, truth, np.random.SeedSequence([seed, 0xCA7E]))


def analytic_sensitivity(data, identification: str, estimator) -> dict[str, Any]:
    """The always-on closed-form sensitivity to an unobserved confounder (no simulation)."""
    from causal_cli import sensitivity

    return sensitivity.analyze(
        data,
        identification,
        estimator.effect_,
        estimator.ci_low_,
        estimator.ci_high_,
        float(estimator.ci_level),
    )


def _data_allocator(executor, work: int):
    """Where the estimation data go: the executor's choice for ``work`` row-simulations (e.g. memory shared
    with its worker processes), else ``np.empty``."""
    allocator = getattr(executor, "data_allocator", None)
    return np.empty if allocator is None else allocator(work)


def _rows_before_loading(cfg, frame) -> int | None:
    """The row count known before the data load (a given frame's, the synthetic DGP's ``dgp.n``), so
    that worker processes can start first; None for files and databases."""
    if frame is not None:
        return len(frame)
    n = (cfg.get("dgp") or {}).get("n")
    return int(n) if cfg.data.get("source") == "synthetic" and n is not None else None


def _bootstrap_fits(estimator) -> int:
    """Re-fits the estimator's confidence interval needs: its bootstrap resamples, if it has no analytic SE."""
    analytic = estimator.ci_method == "analytic" and estimator.has_analytic_se
    return 0 if analytic else int(estimator.num_bootstrap)


def _compare(name, node, graph, frame, seed, backdoor_method, executor, progress) -> EffectResult:
    """Fit one more estimator on the same data; its failure is recorded, not fatal."""
    from causal_cli.errors import CausalCliError
    from causal_cli.identify import identify

    cls = registry.load("estimator", name)
    estimator = cls.from_config(node, random_state=np.random.SeedSequence([seed, 0xC0]))
    target = str(getattr(estimator.target_units, "value", estimator.target_units))
    try:
        identification = identify(graph, cls.identification, backdoor_method)
        estimator.fit(build_estimation_data(frame, graph, identification), executor, progress)
    except CausalCliError as exc:
        return EffectResult(name, target, None, None, None, None, cls.identification, error=exc.one_line())
    return EffectResult(
        estimator=name,
        target_units=target,
        estimate=estimator.effect_,
        std_error=estimator.std_error_,
        ci_low=estimator.ci_low_,
        ci_high=estimator.ci_high_,
        identification=identification.kind,
        details=estimator.summary(),
        caveats=list(estimator.caveats()),
    )


def _diagnostics(cfg, frame, graph, data, estimator):
    """Balance and overlap on the adjustment set plus any other observed confounder of the graph."""
    from causal_cli import diagnostics
    from causal_cli.data import expand_columns

    confounders = [n for n in graph.observed_nodes if graph.role_of(n) == "confounder"]
    names = list(data.covariates) + [
        n for n in expand_columns(frame, confounders) if n not in data.covariates and n in frame.columns
    ]
    extra = names[len(data.covariates) :]
    try:
        X = np.column_stack([data.X, frame[extra].to_numpy(dtype=float)]) if extra else data.X
    except (TypeError, ValueError) as exc:
        raise DataError(f"confounder column(s) {', '.join(extra)} are not numeric: {exc}") from exc
    return diagnostics.compute(
        data.t, X, names, estimator, cfg.get("diagnostics"), observation_weights=data.w
    )


def _weight_caveats(diag, estimator, stated: list[str]) -> list[str]:
    """Heavy-tailed inverse propensity weights of an estimator that weights by the propensity score
    (it exposes ``overlap_``: aipw's IPW part) but does not state them in its own caveats."""
    from causal_cli.diagnostics import weight_caveats

    if getattr(estimator, "overlap_", None) is None or any(c.startswith("heavy-tailed") for c in stated):
        return []
    return weight_caveats(diag)


def _reference_kind(cfg, dataset) -> str | None:
    if cfg.get("reference_kind") not in (None, "auto"):
        return str(cfg.reference_kind)
    return dataset.reference_kind or ("published" if cfg.get("reference") is not None else None)


def _dataset(cfg, graph, base_dir, frame):
    from causal_cli.data import load_dataset

    if frame is None:
        return load_dataset(cfg, graph, base_dir=base_dir)
    from causal_cli.data.frame import frame_dataset

    return frame_dataset(cfg, graph, frame)


def run_randomized(cfg, graph, seed: int, base_dir: str | None = None, frame=None) -> RunResult:
    """A randomized design: the A/B analysis (causal_cli.abtest) in place of identification and adjustment.

    Randomization identifies the effect, so no DoWhy model is built and no refuter runs: the design's own
    checks (sample ratio mismatch, pre-period balance, and the A/A false-positive rate) take their place.
    The headline fields describe the primary metric: ``naive_estimate`` is its difference in means,
    ``estimate`` its CUPED (Lin) estimate when covariates are declared, else the difference in means.
    """
    from causal_cli.abtest.aa import aa_sweep
    from causal_cli.abtest.analysis import analyze, metric_columns

    ab = cfg.get("ab")
    if ab is None:
        raise ConfigError(
            "graph.design=randomized needs the A/B analysis settings: choose them with ab=launch "
            "(or experiment=ab_feature_launch; see causal list ab)"
        )
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    dataset = _dataset(cfg, graph, base_dir, frame)
    frame = dataset.frame
    columns = [
        graph.treatment,
        *(c for n, m in ab.metrics.items() for c in metric_columns(n, m)),
        *ab.pre_period,
    ]
    columns = [c for c in dict.fromkeys(columns) if c in frame.columns]
    data_hash = provenance.frame_hash(frame, columns)
    timings["data"] = round(time.perf_counter() - clock, 4)
    clock = time.perf_counter()
    experiment = analyze(frame, graph.treatment, ab, dataset.info.get("ab_truth"))
    timings["estimate"] = round(time.perf_counter() - clock, 4)
    if int(ab.aa_simulations) > 0:
        clock = time.perf_counter()
        experiment.aa = aa_sweep(frame, ab, int(ab.aa_simulations), seed)
        timings["aa"] = round(time.perf_counter() - clock, 4)
    primary = experiment.primary_metric
    notes = list(dataset.notes)
    chosen, _ = refuter_settings(cfg)
    if chosen:
        notes.append(
            f"refuters ({', '.join(chosen)}) are not run for a randomized design; the SRM, balance and A/A "
            "checks take their place"
        )
    reference = float(cfg.reference) if cfg.get("reference") is not None else primary.truth_difference
    if cfg.get("reference") is not None:
        reference_kind = _reference_kind(cfg, dataset)
    else:
        reference_kind = "ground_truth" if reference is not None else None
    method = "cuped" if primary.cuped_difference is not None else "difference_in_means"
    return RunResult(
        treatment=graph.treatment,
        outcome=primary.name,
        estimator=method,
        target_units="ate",
        n_rows=int(len(frame)),
        identification="randomized",
        adjustment_set=list(primary.covariates),
        naive_estimate=primary.difference.value,
        naive_std_error=primary.difference.std_error,
        estimate=primary.estimate.value,
        std_error=primary.estimate.std_error,
        ci_low=primary.estimate.ci_low,
        ci_high=primary.estimate.ci_high,
        ci_level=1 - float(ab.alpha),
        ci_method="analytic",
        reference=reference,
        reference_kind=reference_kind,
        references={"ate": reference} if reference is not None else None,
        seed=int(cfg.seed),
        estimator_details={"method": method, "variance_reduction": primary.variance_reduction},
        graph=graph_record(graph),
        data_description=dataset.description,
        notes=notes,
        timings=timings,
        data_hash=data_hash,
        data_files=provenance.source_file_hashes(cfg.data, base_dir, cfg.graph),
        experiment=experiment,
    )
