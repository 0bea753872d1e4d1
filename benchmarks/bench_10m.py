"""10M-row studies, end to end: wall, CPU and peak memory of ``causal run`` in one command.

Three studies, each a ``causal run`` subprocess (composition, pipeline, console report, run folder,
pictures and the helper process included):

- ``psm``: the simulated ``product_growth`` study at ``--n`` rows, PSM (ATE) with its analytic SE, no
  refuters (targets: under 20 s wall on 2 cores, data generation included; peak PSS under 4 GB);
- ``pipeline``: the seed pipeline (psm + placebo (permute) + random common cause + data subset (0.8),
  ``--sims`` simulations each; target: under 5 minutes, peak PSS under 4 GB);
- ``parquet``: the same study read from a Parquet file of the same data with four extra columns
  (an id, a country, two numbers): only the graph's four columns are read. The file is written once to
  ``--parquet`` (kept between runs). Target: peak under 2x the size of those columns, measured in a
  separate process (``--worker-memory``) as defined below.

Memory of ``causal run`` is PSS (shared pages split between the processes sharing them) summed over
the command's process tree, sampled every 0.25 s, or less often when a sample costs more than 2% of a
core (``bench_vs_dowhy.sample_paced``; one sampler, :class:`TreeProfile`, gives the tree's peaks and the
per-process rows below). CPU seconds (``bench_vs_dowhy.run_monitored``): the command and the worker
processes it waited for. The load average is printed next to every number.

Per process (the same samples, from ``/proc``): its role (main, worker, resource
tracker), peak PSS and RSS, and user / system CPU seconds and minor page faults as last sampled (up to
one sampling interval before it exited). Per refuter of the pipeline study: the CPU of the whole tree while the main
process held that refuter's claim board open (``runtime.local.ClaimBoard``, an anonymous file named
``causal-cli-claims``, one per parallel run of simulations, taken in the order they appear), divided by
the simulations; and the tree's peak PSS meanwhile. The extrapolation to 100 simulations scales each
refuter's stage wall (``timings``) and CPU by ``100 / --sims`` and keeps the rest of the run as measured
(:func:`extrapolate`).

The Parquet memory ratio: a fresh process imports everything the run needs and composes the config;
its resident set then is the *baseline*, and its peak counter is reset (``/proc/self/clear_refs``).
*Peak increase* = the kernel's exact peak resident set (``VmHWM``) minus the baseline, after

- ``data``: reading the file, validating it, hashing it and building the estimation data (the data stage);
- ``study``: the whole ``pipeline.run`` of the study (the data stage, PSM with its SE, diagnostics) in
  another fresh process;

each divided by the bytes of the graph's columns as float64 (rows x 4 x 8 bytes).

    python benchmarks/bench_10m.py                      # all three at 10M rows
    python benchmarks/bench_10m.py --studies psm,parquet --n 1000000
    python benchmarks/bench_10m.py --studies pipeline --sims 4  # the seed pipeline, 4 simulations each
    python benchmarks/bench_10m.py --studies refits --sims 2    # refits in a worker-like process

``refits``: where a simulation's CPU and memory go in a worker process. This process builds the seed
pipeline's estimation data as ``causal run`` does when workers will use them (in shared memory, a spare
row after the covariates), fits PSM and shares the job (``runtime.shared.SharedJob``); then a fresh
process per allocator setting (:data:`ALLOCATORS`) maps the job as a worker does and runs ``--sims``
simulations of each refuter (placebo, random common cause, data subset): user and system CPU and minor
page faults of each simulation (``getrusage``), and its peak resident set (``VmHWM``) after each.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_vs_dowhy import (  # noqa: E402
    _children_of,
    _kb,
    compose_config,
    load_average,
    run_monitored,
    sample_paced,
)

STUDIES = ("psm", "pipeline", "parquet", "refits")
#: the refits study's allocator settings of the worker-like process: glibc as keep_freed_memory leaves it
#: (the default below 1M rows), and every allocation from a kept heap (runtime.tuning.heap_only)
ALLOCATORS = ("mmap", "heap")
#: the pipeline study's extrapolation: simulations per refuter of the seed pipeline
EXTRAPOLATE_TO = 100
#: the graph's columns (what a Parquet study must read) and the extra ones it must not
GRAPH_COLUMNS = ("account_age", "activity", "feature_used", "spend")


def causal_command() -> list[str]:
    exe = Path(sys.executable).with_name("causal")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "causal_cli.cli"]


def write_parquet(path: Path, n: int, seed: int = 0) -> None:
    """The simulated ``product_growth`` data plus four columns the graph does not use."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from causal_cli.data.synthetic import ProductGrowthDGP, ProductGrowthDGPConfig

    frame, _ = ProductGrowthDGP(ProductGrowthDGPConfig(n=n, seed=seed, confounding="strong")).simulate(
        np.random.default_rng(np.random.SeedSequence(seed))
    )
    rng = np.random.default_rng(seed + 1)
    table = pa.table(
        {
            "user_id": np.arange(n, dtype=np.int64),
            "country": pa.array(rng.choice(["US", "DE", "FR", "JP"], n)).dictionary_encode(),
            **{name: frame[name].to_numpy() for name in GRAPH_COLUMNS},
            "sessions_last_week": rng.poisson(5.0, n).astype(np.int64),
            "revenue_last_year": rng.gamma(2.0, 50.0, n),
        }
    )
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp, row_group_size=1_000_000)
    tmp.replace(path)


def study_overrides(study: str, n: int, sims: int, parquet: Path) -> list[str]:
    if study == "pipeline":
        return compose_config(n, sims, -1)[1]
    base = ["seed=0", f"dgp.n={n}", "dgp.confounding=strong", "estimator=psm", "refuters=[]"]
    if study == "parquet":
        base += ["data=parquet", f"data.path={parquet}"]
    return base


#: the clock ticks of /proc/PID/stat's CPU times
CLOCK_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
#: the name of the claim board's anonymous file (``runtime.local.ClaimBoard``): one per parallel run of simulations
CLAIMS = "causal-cli-claims"


def process_role(pid: int, root: int) -> str:
    if pid == root:
        return "main"
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return "other"
    if b"resource_tracker" in cmdline:
        return "resource tracker"
    return "worker" if b"loky" in cmdline else "other"


def process_cpu(pid: int) -> tuple[float, float, int] | None:
    """``(user s, system s, minor page faults)`` of a live process, from ``/proc/PID/stat``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) / CLOCK_TICK, int(fields[12]) / CLOCK_TICK, int(fields[7])


def open_claim_board(pid: int) -> int | None:
    """The inode of the newest claim board ``pid`` holds open (the refuter whose simulations run), if any."""
    newest = None
    try:
        entries = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in entries:
        try:
            if CLAIMS in os.readlink(f"/proc/{pid}/fd/{fd}"):
                inode = os.stat(f"/proc/{pid}/fd/{fd}").st_ino
                newest = inode if newest is None else max(newest, inode)
        except OSError:
            continue
    return newest


class TreeProfile:
    """Per process of a command's tree, sampled by ``sample_paced``: peak PSS and RSS, and the last
    user/system CPU seconds and minor page faults seen; and the tree's CPU split by the claim board the
    main process had open (one per refuter's parallel simulations, in the order they start)."""

    def __init__(self, root: int):
        self.root = root
        self.processes: dict[int, dict] = {}
        self.boards: list[int] = []
        self.board_cpu: dict[int, list[float]] = {}
        self.board_peak: dict[int | None, float] = {}
        self.last_total: tuple[float, float] | None = None
        #: the tree's peak PSS and RSS summed over its processes (``run_monitored``'s peaks)
        self.tree_peak = {"pss": 0.0, "rss": 0.0}

    def sample(self) -> None:
        stack, total, pss, rss = [self.root], [0.0, 0.0], 0.0, 0.0
        while stack:
            pid = stack.pop()
            stack.extend(_children_of(pid, None))
            cpu = process_cpu(pid)
            if cpu is None:
                continue
            row = self.processes.setdefault(
                pid, {"role": process_role(pid, self.root), "peak_pss_mb": 0.0, "peak_rss_mb": 0.0}
            )
            now = _kb(f"/proc/{pid}/smaps_rollup", "Pss:") / 1024
            pss += now
            row["peak_pss_mb"] = max(row["peak_pss_mb"], now)
            resident = _kb(f"/proc/{pid}/status", "VmRSS:") / 1024
            rss += resident
            row["peak_rss_mb"] = max(row["peak_rss_mb"], resident)
            row["user_s"], row["sys_s"], row["minflt"] = cpu
            total[0] += cpu[0]
            total[1] += cpu[1]
        self.tree_peak["pss"], self.tree_peak["rss"] = (
            max(self.tree_peak["pss"], pss),
            max(self.tree_peak["rss"], rss),
        )
        self._attribute(open_claim_board(self.root), total, pss)

    def _attribute(self, board: int | None, total: list[float], pss: float) -> None:
        """The CPU since the last sample, and the tree's PSS now, to the claim board open now (a refuter's
        simulations; ``None``: before, between or after them)."""
        if board is not None and board not in self.board_cpu:
            self.boards.append(board)
            self.board_cpu[board] = [0.0, 0.0]
        self.board_peak[board] = max(self.board_peak.get(board, 0.0), pss)
        if self.last_total is not None and board is not None:
            spent = self.board_cpu[board]
            spent[0] += max(0.0, total[0] - self.last_total[0])
            spent[1] += max(0.0, total[1] - self.last_total[1])
        self.last_total = (total[0], total[1])

    def refuter_cpu(self, names: list[str]) -> dict[str, dict]:
        """CPU (user, system) of each refuter's simulations, the boards matched to ``names`` in order."""
        return {
            name: {
                "user_s": round(self.board_cpu[b][0], 2),
                "sys_s": round(self.board_cpu[b][1], 2),
                "peak_pss_mb": round(self.board_peak.get(b, 0.0)),
            }
            for name, b in zip(names, self.boards)
        }


def run_profiled(argv: list[str], cwd: str, env: dict) -> tuple[dict, TreeProfile]:
    """:func:`run_monitored`'s numbers plus a :class:`TreeProfile` of the same run; the profile's samples
    give the tree's peaks too (one sampler reading /proc, not two)."""
    import threading

    profile = TreeProfile(-1)
    done = threading.Event()

    def sample() -> None:
        root = _newest_child()
        if root is not None:
            profile.root = root
            profile.sample()

    sampler = threading.Thread(target=sample_paced, args=(done, sample), daemon=True)
    sampler.start()
    try:
        run = run_monitored(argv, cwd=cwd, env=env, sample_memory=False)
    finally:
        done.set()
        sampler.join()
    run["peak_pss_mb"], run["peak_rss_mb"] = profile.tree_peak["pss"], profile.tree_peak["rss"]
    return run, profile


def _newest_child() -> int | None:
    """This process's newest child process (the command :func:`run_monitored` started)."""
    children = _children_of(os.getpid(), None)
    return max(children) if children else None


def process_table(profile: TreeProfile) -> list[dict]:
    """One row per process that ran: role, peak PSS/RSS, user/system CPU and minor faults (last sample)."""
    rows = []
    for pid, row in sorted(profile.processes.items()):
        rows.append({"pid": pid, **{k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}})
    return rows


def run_study(study: str, n: int, sims: int, parquet: Path) -> dict:
    load = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        argv = [
            *causal_command(),
            "run",
            *study_overrides(study, n, sims, parquet),
            f"hydra.run.dir={tmp}/run",
        ]
        run, profile = run_profiled(argv, cwd=tmp, env={**os.environ, "COLUMNS": "120"})
        if run["code"] != 0:
            raise SystemExit(f"{study}: causal run failed (exit {run['code']}): {run['stderr'][-2000:]}")
        results = json.loads((Path(tmp) / "run" / "results.json").read_text())
    return {
        "study": study,
        "n": n,
        "wall_s": round(run["wall"], 2),
        "cpu_s": round(run["cpu_s"], 2),
        "peak_pss_mb": round(run["peak_pss_mb"]),
        "peak_rss_mb": round(run["peak_rss_mb"]),
        "estimate": results.get("estimate"),
        "std_error": results.get("std_error"),
        "timings": results.get("timings"),
        "processes": process_table(profile),
        "refuter_cpu": profile.refuter_cpu([r["name"] for r in results.get("refutations") or []]),
        "peak_pss_outside_refuters_mb": round(profile.board_peak.get(None, 0.0)),
        "load_before": load,
        "load_after": load_average(),
        "argv": argv,
    }


def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no {field} in /proc/self/status (Linux only)")


def worker_memory(part: str, parquet: Path, n: int) -> dict:
    """In this (fresh) process: the peak resident-set increase of the Parquet study's data stage or whole run."""
    import gc
    import time

    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from causal_cli import pipeline, provenance, registry
    from causal_cli.data import load_dataset
    from causal_cli.graph import CausalGraph
    from causal_cli.identify import identify
    from causal_cli.schema import register_configs
    from causal_cli.task import VERSION_BASE, conf_dir
    from causal_cli.validate import validate

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=VERSION_BASE):
        cfg = validate(compose(config_name="config", overrides=study_overrides("parquet", n, 0, parquet)))
    graph = CausalGraph.from_config(cfg.graph)
    estimator_cls = registry.load("estimator", cfg.estimator.name)
    import pyarrow.parquet  # noqa: F401  (imports belong to the baseline)

    gc.collect()
    baseline = status_mb("VmRSS:")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set
    cpu, wall = time.process_time(), time.perf_counter()
    if part == "data":
        dataset = load_dataset(cfg, graph)
        provenance.frame_hash(dataset.frame, graph.observed_nodes)
        identification = identify(graph, estimator_cls.identification, cfg.identification.backdoor_method)
        pipeline.build_estimation_data(dataset.frame, graph, identification)
        rows = len(dataset.frame)
    else:
        rows = pipeline.run(cfg).n_rows
    return {
        "part": part,
        "rows": rows,
        "baseline_rss_mb": baseline,
        "peak_increase_mb": status_mb("VmHWM:") - baseline,
        "cpu_s": time.process_time() - cpu,
        "wall_s": time.perf_counter() - wall,
    }


def parquet_memory(parquet: Path, n: int) -> dict:
    """The two ``--worker-memory`` measurements, each in its own fresh process."""
    out = {}
    for part in ("data", "study"):
        argv = [sys.executable, __file__, "--worker-memory", part, "--parquet", str(parquet), "--n", str(n)]
        run = run_monitored(argv)
        if run["code"] != 0:
            raise SystemExit(f"parquet memory ({part}) failed: {run['stderr'][-2000:]}")
        out[part] = json.loads(run["stdout"].strip().splitlines()[-1])
    return out


def baseline_pss_mb(parquet: Path, n: int = 10_000) -> float:
    """Peak PSS of the same Parquet study at ``n`` rows: what a run costs whatever the data's size
    (interpreter, imports, helper process, report)."""
    small = parquet.with_name(f"{parquet.stem}_baseline_{n}.parquet")
    if not small.exists():
        write_parquet(small, n)
    return run_study("parquet", n, 0, small)["peak_pss_mb"]


def parquet_lines(res: dict, parquet: Path, n: int) -> str:
    """The Parquet study's memory ratios (see the module docstring), added to ``res``."""
    columns_mb = n * 8 * len(GRAPH_COLUMNS) / 2**20
    res["graph_columns_mb"] = round(columns_mb)
    res["baseline_pss_mb"] = round(baseline_pss_mb(parquet))
    above = res["peak_pss_mb"] - res["baseline_pss_mb"]
    res["memory"] = parquet_memory(parquet, n)
    lines = (
        f"\n         graph columns as float64 {columns_mb:.0f} MB; causal run's peak PSS above a 10k-row run's "
        f"{res['baseline_pss_mb']} MB: {above} MB = {above / columns_mb:.2f}x the columns"
    )
    for part, label in (
        ("data", "data stage (read, validate, hash, estimation data)"),
        ("study", "whole run"),
    ):
        m = res["memory"][part]
        lines += (
            f"\n         {label}: peak RSS {m['peak_increase_mb']:.0f} MB above the {m['baseline_rss_mb']:.0f} MB "
            f"after imports = {m['peak_increase_mb'] / columns_mb:.2f}x the columns (target < 2x); "
            f"cpu {m['cpu_s']:.2f} s, wall {m['wall_s']:.2f} s"
        )
    return lines


def process_lines(res: dict) -> str:
    """Each process's peak PSS / RSS and CPU (user + system, minor page faults) as last sampled."""
    return "\n".join(
        f"         {p['role']:16s} pid {p['pid']:7d}  peak PSS {p['peak_pss_mb']:6.0f} MB  RSS "
        f"{p['peak_rss_mb']:6.0f} MB  cpu user {p['user_s']:6.1f} s sys {p['sys_s']:5.1f} s  "
        f"minflt {p['minflt']:,}"
        for p in res["processes"]
    )


def extrapolate(res: dict, sims: int, target: int = EXTRAPOLATE_TO) -> dict:
    """Wall and CPU at ``target`` simulations per refuter: each refuter's stage wall (``timings``) and its
    CPU (:meth:`TreeProfile.refuter_cpu`) scaled by ``target / sims``, the rest of the run as measured.

    Linear in the simulations; the fixed costs inside a refuter's stage (sharing the data with the
    workers, the last simulation running alone) are scaled too, so it overstates the wall a little."""
    stages = {k: v for k, v in (res["timings"] or {}).items() if k.startswith("refute:")}
    refute_wall = sum(stages.values())
    refute_cpu = sum(v["user_s"] + v["sys_s"] for v in res["refuter_cpu"].values())
    scale = target / sims
    return {
        "simulations": target,
        "wall_s": round(res["wall_s"] - refute_wall + refute_wall * scale, 1),
        "cpu_s": round(res["cpu_s"] - refute_cpu + refute_cpu * scale, 1),
    }


def refuter_lines(res: dict, sims: int) -> str:
    """CPU per simulation of each refuter (all processes), and the run extrapolated to 100 simulations."""
    lines = []
    for name, cpu in res["refuter_cpu"].items():
        wall = (res["timings"] or {}).get(f"refute:{name}", float("nan"))
        lines.append(
            f"         refuter {name:20s} cpu/simulation user {cpu['user_s'] / sims:5.2f} s sys "
            f"{cpu['sys_s'] / sims:5.2f} s  stage wall {wall:6.1f} s  tree peak PSS {cpu['peak_pss_mb']} MB"
        )
    res["extrapolated"] = extrapolate(res, sims)
    e = res["extrapolated"]
    lines.append(
        f"         tree peak PSS outside the refuters' simulations {res['peak_pss_outside_refuters_mb']} MB"
    )
    lines.append(
        f"         extrapolated to {e['simulations']} simulations: wall {e['wall_s']} s, cpu {e['cpu_s']} s"
    )
    return "\n".join(lines)


def refit_worker(handle_file: str, sims: int, allocator: str) -> None:
    """In a fresh process: the job in ``handle_file`` mapped as a worker maps it, ``sims`` simulations of
    each refuter, one line per simulation and a total (see the module docstring)."""
    import pickle
    import resource

    import numpy as np

    from causal_cli.numerics import cores_busy, one_blas_thread, quiet_numerics
    from causal_cli.runtime import shared, tuning
    from causal_cli.simulate import simulate

    handle = pickle.loads(Path(handle_file).read_bytes())
    tuning.keep_freed_memory()
    refuters, estimator, data = shared.load(handle)
    if allocator == "heap":
        tuning.heap_only(data.n)
    streams = np.random.SeedSequence(0).spawn(sims)
    total = [0.0, 0.0, 0]
    with one_blas_thread(), quiet_numerics(), cores_busy():
        for refuter in refuters:
            for i in range(sims):
                before = resource.getrusage(resource.RUSAGE_SELF)
                simulate(refuter, estimator, data, i, streams[i])
                after = resource.getrusage(resource.RUSAGE_SELF)
                user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
                faults = after.ru_minflt - before.ru_minflt
                total = [total[0] + user, total[1] + system, total[2] + faults]
                print(
                    f"         {allocator:5s} {refuter.name:20s} simulation {i}: user {user:5.2f} s  sys "
                    f"{system:5.2f} s  minflt {faults:9,d}  peak RSS {status_mb('VmHWM:'):6.0f} MB",
                    flush=True,
                )
    print(
        f"         {allocator:5s} all {sims * len(refuters)} simulations: user {total[0]:.2f} s  sys {total[1]:.2f} s  "
        f"minflt {total[2]:,}  peak RSS {status_mb('VmHWM:'):.0f} MB",
        flush=True,
    )


def refits_study(n: int, sims: int) -> None:
    """The ``refits`` study (module docstring): the job shared once, one fresh process per allocator."""
    import pickle
    import subprocess

    import numpy as np

    from causal_cli.data.synthetic import ProductGrowthDGP, ProductGrowthDGPConfig
    from causal_cli.estimators.psm import PSMEstimator
    from causal_cli.identify import Identification
    from causal_cli.pipeline import build_estimation_data
    from causal_cli.refuters.data_subset import DataSubsetRefuter
    from causal_cli.refuters.placebo import PlaceboRefuter
    from causal_cli.refuters.random_common_cause import RandomCommonCauseRefuter
    from causal_cli.runtime import shared

    class Graph:
        treatment, outcome, effect_modifiers = "feature_used", "spend", None

    frame, _ = ProductGrowthDGP(ProductGrowthDGPConfig(n=n, seed=0, confounding="strong")).simulate(
        np.random.default_rng(np.random.SeedSequence(0))
    )
    identification = Identification(kind="backdoor", adjustment_set=["account_age", "activity"])
    data = build_estimation_data(frame, Graph, identification, shared.empty)
    estimator = PSMEstimator().fit(data).compact()
    refuters = (PlaceboRefuter(), RandomCommonCauseRefuter(), DataSubsetRefuter(subset_fraction=0.8))
    with shared.SharedJob((refuters, estimator, data)) as job, tempfile.TemporaryDirectory() as tmp:
        handle_file = Path(tmp) / "handle.pickle"
        handle_file.write_bytes(pickle.dumps(job.handle))
        for allocator in ALLOCATORS:
            load = load_average()
            argv = [sys.executable, __file__, "--refit-worker", str(handle_file), "--sims", str(sims)]
            subprocess.run([*argv, "--allocator", allocator], check=True)
            print(f"         load {load} -> {load_average()}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000_000, help="rows (default 10M)")
    parser.add_argument("--sims", type=int, default=100, help="simulations per refuter (pipeline)")
    parser.add_argument("--studies", default=",".join(STUDIES), help=f"comma-separated: {', '.join(STUDIES)}")
    parser.add_argument(
        "--parquet", default=None, help="the Parquet file (written if missing; default: a temp folder path)"
    )
    parser.add_argument("--json", help="also write the measurements to this JSON file")
    parser.add_argument("--worker-memory", choices=("data", "study"), help=argparse.SUPPRESS)
    parser.add_argument("--refit-worker", help=argparse.SUPPRESS)
    parser.add_argument("--allocator", choices=ALLOCATORS, default="heap", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.refit_worker:
        refit_worker(args.refit_worker, args.sims, args.allocator)
        return 0
    if args.worker_memory:
        print(json.dumps(worker_memory(args.worker_memory, Path(args.parquet), args.n)))
        return 0
    studies = [s for s in args.studies.split(",") if s]
    unknown = [s for s in studies if s not in STUDIES]
    if unknown:
        parser.error(f"unknown study {unknown[0]!r}; allowed: {', '.join(STUDIES)}")
    parquet = Path(args.parquet or Path(tempfile.gettempdir()) / f"causal_bench_{args.n}.parquet")
    print(f"# causal run at n = {args.n:,}; python {sys.version.split()[0]}, {os.cpu_count()} cores")
    out = []
    for study in studies:
        if study == "refits":
            print(
                f"refits   {args.sims} simulations per refuter in a worker-like process, per allocator",
                flush=True,
            )
            refits_study(args.n, args.sims)
            continue
        if study == "parquet" and not parquet.exists():
            print(f"# writing {parquet} ...", flush=True)
            write_parquet(parquet, args.n)
        res = run_study(study, args.n, args.sims, parquet)
        line = (
            f"{study:8s} wall {res['wall_s']:7.2f} s  cpu {res['cpu_s']:7.2f} s  peak PSS {res['peak_pss_mb']:6d} MB"
            f"  estimate {res['estimate']:.4f} (SE {res['std_error']:.4f})  load {res['load_before']} -> "
            f"{res['load_after']}"
        )
        if study == "parquet":
            line += parquet_lines(res, parquet, args.n)
        print(line, flush=True)
        print(f"         stages: {res['timings']}", flush=True)
        print(process_lines(res), flush=True)
        if study == "pipeline" and res["refuter_cpu"]:
            print(refuter_lines(res, args.sims), flush=True)
        out.append(res)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
