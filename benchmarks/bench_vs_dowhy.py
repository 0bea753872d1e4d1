"""Stock DoWhy 0.14 against causal-cli on the seed pipeline, side by side, in one command.

The seed pipeline: propensity score matching (ATE) on ``product_growth`` (confounding strong), then
placebo (permute), random common cause and data subset (0.8) refuters, ``--sims`` simulations each.
Every side runs in its own subprocess on the same data (the DGP of ``causal_cli.data.synthetic``,
same seed), so imports and peak memory are measured per side:

- ``stock shipped``: DoWhy as it ships. Its PSM writes a ``propensity_score`` column into the
  model's data frame and every refuter simulation reuses that stale column instead of refitting the
  propensity model (DoWhy issue #1728).
- ``stock honest``: the same DoWhy calls, but each refuter gets ``data.drop(columns="propensity_score")``.
  Each DoWhy simulation builds its own modified frame (``assign``/``sample``) from that clean frame, so
  the propensity model is refitted in every simulation, as the refutation means to do (the table's
  ``propensity refits/sim`` row counts DoWhy's ``LogisticRegression`` fits: 0 shipped, 1 honest).
- ``ours``: ``causal_cli.pipeline.run`` on a config composed with Hydra's compose API (what
  ``causal run`` runs, without the console report and output files), refuters on all cores.

Both DoWhy sides use DoWhy's functional refuters (``refute_placebo_treatment`` with
``PlaceboType.PERMUTE``, ``refute_random_common_cause``, ``refute_data_subset``) with DoWhy's default
``n_jobs=1`` (``--stock-n-jobs`` to change it) and ``random_state`` = run seed + refuter number. At
``--stock-scale-from`` rows and up DoWhy runs ``--stock-sims-large`` simulations per refuter and its
refuter times are scaled linearly to ``--sims`` (marked ``*``). The ``causal run`` command is also
run end to end on the same data at every size (subprocess; output files, pictures and its helper process
included), with its wall time and peak memory, and at the smallest size against ``import dowhy``.

Memory: resident (RSS) and proportional (PSS: shared pages split between the processes sharing them)
memory summed over each side's process tree (the side's process and its worker processes), sampled
every 0.25 s, peak; and the exact peak (VmHWM) of each side's main process. CPU seconds: the side's
process and the worker processes it waited for.

    python benchmarks/bench_vs_dowhy.py                  # 10k (3 runs), 100k, 1M: about 16 minutes on 2 cores
    python benchmarks/bench_vs_dowhy.py --quick          # 10k, 5 simulations: a smoke test, < 1 minute
    python benchmarks/bench_vs_dowhy.py --sizes 100000 --json out.json
    python benchmarks/bench_vs_dowhy.py --sizes 10000000   # 10M: DoWhy runs 6 simulations per refuter, scaled
    git worktree add /tmp/before e54a109 && python benchmarks/bench_vs_dowhy.py --sizes 10000,100000 \
        --ours-before /tmp/before          # also our side at an earlier commit, paired against the same stock run
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

REFUTERS = ("placebo", "random_common_cause", "data_subset")
SIDES = ("stock_shipped", "stock_honest", "ours")
RESULT_PREFIX = "BENCH-RESULT "
#: agreement tolerance for estimates and refuter means, relative to the estimate
AGREEMENT = 0.01
#: memory sampling interval: a sample costs ~6 ms of CPU (reading /proc), kept small against the work
SAMPLE_EVERY_S = 0.25
#: ... and longer when a sample costs more: each sampler's own CPU stays under this share of one core.
#: Reading smaps_rollup of processes holding GBs costs 20-50 ms; at a fixed 0.25 s the two samplers of
#: bench_10m.py took ~25% of a core (user + system) and slowed the 10M run they measured by ~15%.
SAMPLER_CPU_SHARE = 0.02


def sample_paced(done: threading.Event, sample: Callable[[], None]) -> None:
    """Call ``sample()`` until ``done``: every ``SAMPLE_EVERY_S``, or less often when a sample costs more
    than ``SAMPLER_CPU_SHARE`` of the wait (its CPU time, system time for /proc reads included)."""
    while not done.is_set():
        cpu = time.thread_time()
        sample()
        done.wait(max(SAMPLE_EVERY_S, (time.thread_time() - cpu) / SAMPLER_CPU_SHARE))


# ----------------------------------------------------------------------------- workers (subprocesses)


#: extra ``causal run`` overrides for our side (``--ours-override``), passed to the worker processes
OURS_OVERRIDES = "BENCH_VS_DOWHY_OURS_OVERRIDES"


def compose_config(n: int, sims: int, n_jobs: int, seed: int = 0):
    """The seed pipeline's config, composed exactly as ``causal run`` would."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from causal_cli.schema import register_configs
    from causal_cli.task import VERSION_BASE, conf_dir

    register_configs()
    GlobalHydra.instance().clear()
    overrides = [
        f"seed={seed}",
        f"dgp.n={n}",
        "dgp.confounding=strong",
        "estimator=psm",
        f"refuters=[{','.join(REFUTERS)}]",
        "refuters.placebo.placebo_type=permute",
        "refuters.data_subset.subset_fraction=0.8",
        *(f"refuters.{name}.num_simulations={sims}" for name in REFUTERS),
        f"refuters.n_jobs={n_jobs}",
        *os.environ.get(OURS_OVERRIDES, "").split(),
    ]
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=VERSION_BASE):
        return compose(config_name="config", overrides=overrides), overrides


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_ours(n: int, sims: int, n_jobs: int) -> dict:
    from causal_cli import pipeline
    from causal_cli.validate import validate

    cfg, _ = compose_config(n, sims, n_jobs)
    typed = validate(cfg)
    started = time.perf_counter()
    result = pipeline.run(typed)
    wall = time.perf_counter() - started
    timings = dict(result.timings)
    stages = {
        "data": timings.get("data", 0.0),
        "identify": timings.get("identify", 0.0),
        "estimate": timings.get("estimate", 0.0),
        "other": sum(
            v for k, v in timings.items() if k in ("setup", "sensitivity", "diagnostics", "compare")
        ),
    }
    effects = {"estimate": result.estimate}
    for ref in result.refutations:
        stages[ref.name] = timings.get(f"refute:{ref.name}", ref.runtime_s)
        effects[ref.name] = ref.new_effect
    return {"stages": stages, "effects": effects, "pipeline_wall": wall, "sims": sims, "timings": timings}


def worker_stock(n: int, sims: int, honest: bool, n_jobs: int) -> dict:
    import logging
    import warnings

    warnings.simplefilter("ignore")
    stages: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        stages[stage] = now - clock
        clock = now

    from causal_cli import registry
    from causal_cli.graph import CausalGraph

    cfg, _ = compose_config(n, sims, 1)
    graph = CausalGraph.from_config(cfg.graph)
    clock = time.perf_counter()  # composing the config is the harness's work, not DoWhy's
    frame = registry.load("dgp", cfg.dgp.kind)(cfg.dgp).dataset().frame
    lap("data")

    from dowhy import CausalModel
    from dowhy.causal_refuters.data_subset_refuter import refute_data_subset
    from dowhy.causal_refuters.placebo_treatment_refuter import PlaceboType, refute_placebo_treatment
    from dowhy.causal_refuters.random_common_cause import refute_random_common_cause

    logging.getLogger("dowhy").setLevel(logging.ERROR)
    fits = count_propensity_fits()
    model = CausalModel(data=frame, treatment=graph.treatment, outcome=graph.outcome, graph=graph.to_gml())
    estimand = model.identify_effect(proceed_when_unidentifiable=True)
    lap("identify")

    estimate = model.estimate_effect(
        estimand, method_name="backdoor.propensity_score_matching", target_units="ate"
    )
    lap("estimate")
    effects = {"estimate": float(estimate.value)}
    seed = int(cfg.seed)

    def data_for_refuter():
        # shipped: the frame PSM wrote ``propensity_score`` into; honest: a clean copy without it
        if honest:
            return model._data.drop(columns=["propensity_score"])
        return model._data

    common = {"num_simulations": sims, "n_jobs": n_jobs}
    calls = {
        "placebo": lambda d: refute_placebo_treatment(
            d,
            estimand,
            estimate,
            [graph.treatment],
            placebo_type=PlaceboType.PERMUTE,
            random_state=seed,
            **common,
        ),
        "random_common_cause": lambda d: refute_random_common_cause(
            d, estimand, estimate, random_state=seed + 1, **common
        ),
        "data_subset": lambda d: refute_data_subset(
            d, estimand, estimate, subset_fraction=0.8, random_state=seed + 2, **common
        ),
    }
    refits = {}
    for name in REFUTERS:
        data = data_for_refuter()
        fits["n"] = 0
        clock = time.perf_counter()
        refutation = calls[name](data)
        lap(name)
        effects[name] = float(refutation.new_effect)
        refits[name] = fits["n"] / sims
    return {"stages": stages, "effects": effects, "sims": sims, "propensity_refits_per_sim": refits}


def count_propensity_fits() -> dict:
    """Count ``LogisticRegression.fit`` calls (DoWhy's propensity model), to show which side refits."""
    from sklearn.linear_model import LogisticRegression

    fits = {"n": 0}
    fit = LogisticRegression.fit

    def counted(self, *args, **kwargs):
        fits["n"] += 1
        return fit(self, *args, **kwargs)

    LogisticRegression.fit = counted
    return fits


def worker_main(args) -> None:
    if args.worker == "ours":
        out = worker_ours(args.n, args.sims, args.n_jobs)
    else:
        out = worker_stock(args.n, args.sims, honest=args.worker == "stock_honest", n_jobs=args.stock_n_jobs)
    out["main_peak_rss_mb"] = peak_rss_mb()
    print(RESULT_PREFIX + json.dumps(out), flush=True)


# ----------------------------------------------------------------------------- orchestration


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _kb(path: str, field: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children_of(pid: int, tree: dict[int, list[int]] | None) -> list[int]:
    """``pid``'s child processes: from ``/proc/PID/task/*/children`` (a few reads), else the full table."""
    if tree is not None:
        return tree.get(pid, [])
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            out += [int(c) for c in task.read_text().split()]
    return out


#: whether this kernel lists each task's children (CONFIG_PROC_CHILDREN); else walk every /proc entry
_CHILDREN_FILES = Path("/proc/self/task").exists() and any(Path("/proc/self/task").glob("*/children"))


def tree_memory_mb(root: int) -> tuple[float, float]:
    """``(RSS, PSS)`` summed over ``root`` and its descendants; PSS splits shared pages between them."""
    tree = None if _CHILDREN_FILES else _children()
    rss = pss = 0
    stack = [root]
    while stack:
        pid = stack.pop()
        rss += _kb(f"/proc/{pid}/status", "VmRSS:")
        pss += _kb(f"/proc/{pid}/smaps_rollup", "Pss:")
        stack.extend(_children_of(pid, tree))
    return rss / 1024, pss / 1024


def run_monitored(
    argv: list[str],
    cwd: str | None = None,
    env: dict | None = None,
    timeout: float = 7200,
    sample_memory: bool = True,
):
    """Run ``argv``; return its output, exit code, wall and CPU seconds and peak tree RSS/PSS in MB.

    CPU seconds are those of the process and the children it waited for (its worker processes).
    ``sample_memory=False``: no sampler here (the caller samples the tree itself); the peaks are 0.
    """
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=env)
    peak = {"rss": 0.0, "pss": 0.0}
    done = threading.Event()

    def sample():
        rss, pss = tree_memory_mb(proc.pid)
        peak["rss"], peak["pss"] = max(peak["rss"], rss), max(peak["pss"], pss)

    sampler = threading.Thread(target=sample_paced, args=(done, sample), daemon=True)
    if sample_memory:
        sampler.start()
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    finally:
        done.set()
        if sample_memory:
            sampler.join()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "stdout": stdout,
        "stderr": stderr,
        "code": proc.returncode,
        "wall": wall,
        "cpu_s": cpu,
        "peak_rss_mb": peak["rss"],
        "peak_pss_mb": peak["pss"],
    }


def run_side(side: str, n: int, sims: int, args, tree: str | None = None) -> dict:
    """One side in a fresh subprocess; with ``tree``, our side from that source tree (its own benchmark
    script and ``causal_cli``: an earlier commit checked out with ``git worktree add``)."""
    script, env = __file__, None
    if tree is not None:
        script = str(Path(tree) / "benchmarks" / "bench_vs_dowhy.py")
        env = {**os.environ, "PYTHONPATH": str(tree)}
    argv = [sys.executable, script, "--worker", side, "--n", str(n), "--sims", str(sims)]
    argv += ["--n-jobs", str(args.n_jobs), "--stock-n-jobs", str(args.stock_n_jobs)]
    run = run_monitored(argv, cwd=tree, env=env)
    line = next((ln for ln in run["stdout"].splitlines() if ln.startswith(RESULT_PREFIX)), None)
    if run["code"] != 0 or line is None:
        tail = "\n".join(run["stderr"].strip().splitlines()[-15:])
        raise SystemExit(f"benchmark side '{side}' at n={n} failed (exit {run['code']}):\n{tail}")
    out = json.loads(line[len(RESULT_PREFIX) :])
    out.update(process_wall=run["wall"], cpu_s=run["cpu_s"], peak_rss_mb=run["peak_rss_mb"])
    out["peak_pss_mb"] = run["peak_pss_mb"]
    return out


def median_run(side: str, n: int, sims: int, args, repeats: int) -> dict:
    """The run with the median estimate + refuters time, of ``repeats`` runs of one side."""
    runs = [run_side(side, n, sims, args) for _ in range(max(1, repeats))]
    runs.sort(key=lambda r: sum(r["stages"].get(name, 0.0) for name in ("estimate", *REFUTERS)))
    return runs[len(runs) // 2]


def work_seconds(run: dict) -> float:
    """Estimate + refuters (the tables' ``TOTAL estimate+refuters`` for our side)."""
    return sum(run["stages"].get(name, 0.0) for name in ("estimate", *REFUTERS))


def paired_before_after(n: int, sims: int, args, stock_honest: dict) -> dict:
    """Our side from ``--ours-before`` and from this tree, alternately, ``--paired-repeats`` runs each,
    against the one stock-honest measurement above: the stock time cancels out of the before/after
    comparison (run to run it varied by 10-15%, which alone moved the ratios by as much)."""
    before, after = [], []
    for _ in range(args.paired_repeats):
        before.append(work_seconds(run_side("ours", n, sims, args, tree=args.ours_before)))
        after.append(work_seconds(run_side("ours", n, sims, args)))
    scale = sims / stock_honest["sims"]
    stock = sum(
        stock_honest["stages"].get(name, 0.0) * (scale if name in REFUTERS else 1.0)
        for name in ("estimate", *REFUTERS)
    )
    mid_before, mid_after = sorted(before)[len(before) // 2], sorted(after)[len(after) // 2]
    out = {
        "before_s": before,
        "after_s": after,
        "stock_honest_s": stock,
        "ratio_before": stock / mid_before,
        "ratio_after": stock / mid_after,
        "after_over_before": mid_after / mid_before,
    }
    print(
        f"\npaired, n = {n:,}: ours estimate+refuters, median of {args.paired_repeats} alternating runs: "
        f"before ({args.ours_before}) {mid_before:.3f} s, after {mid_after:.3f} s; against stock honest "
        f"{stock:.2f} s: before {out['ratio_before']:.1f}x, after {out['ratio_after']:.1f}x "
        f"(after/before ratio {out['ratio_after'] / out['ratio_before']:.1%}; within 10%: "
        f"{'yes' if out['ratio_after'] >= 0.9 * out['ratio_before'] else 'no'})"
    )
    print("   every run, before: " + ", ".join(f"{v:.3f}" for v in before))
    print("   every run, after:  " + ", ".join(f"{v:.3f}" for v in after))
    return out


def time_causal_run(n: int, sims: int, n_jobs: int) -> dict:
    """``causal run`` end to end (composition, pipeline, console report, run folder) in a subprocess."""
    _, overrides = compose_config(n, sims, n_jobs)
    exe = Path(sys.executable).with_name("causal")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "causal_cli.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        argv = [*command, "run", *overrides, f"hydra.run.dir={tmp}/run"]
        run = run_monitored(argv, cwd=tmp, env={**os.environ, "COLUMNS": "120"})
        if run["code"] != 0:
            raise SystemExit(
                f"causal run failed (exit {run['code']}): {run['stderr'].strip().splitlines()[-1:]}"
            )
        results = json.loads((Path(tmp) / "run" / "results.json").read_text())
    return {
        "wall": run["wall"],
        "peak_rss_mb": run["peak_rss_mb"],
        "peak_pss_mb": run["peak_pss_mb"],
        "estimate": results.get("estimate"),
        "argv": argv,
    }


def time_import_dowhy(repeats: int = 3) -> float:
    walls = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import dowhy"], check=True, capture_output=True)
        walls.append(time.perf_counter() - started)
    return min(walls)


# ----------------------------------------------------------------------------- table


def fmt_s(value: float | None, scaled: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}{'*' if scaled else ''}"


def fmt_ratio(stock: float | None, ours: float | None) -> str:
    if stock is None or not ours:
        return "-"
    return f"{stock / ours:.1f}x"


def fmt_effect(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def row(
    label: str, seconds: list, effects: list | None = None, agree: str = "", scaled: bool = False
) -> list[str]:
    """One table row: seconds (shipped, honest, ours), the two speed-ups, and the three effects."""
    ship, honest, ours = seconds
    cells = [label, fmt_s(ship, scaled), fmt_s(honest, scaled), fmt_s(ours)]
    cells += [fmt_ratio(honest, ours), fmt_ratio(ship, ours)]
    return cells + ([fmt_effect(e) for e in effects] if effects else ["", "", ""]) + [agree]


def build_rows(res: dict, sims: int) -> list[list[str]]:
    scale = {side: sims / res[side]["sims"] if side != "ours" else 1.0 for side in SIDES}
    estimate = res["ours"]["effects"]["estimate"]

    def seconds(name: str) -> list[float | None]:
        out = []
        for side in SIDES:
            value = res[side]["stages"].get(name)
            out.append(None if value is None else value * (scale[side] if name in REFUTERS else 1.0))
        return out

    def total(names) -> list[float]:
        return [sum(v or 0.0 for v in values) for values in zip(*(seconds(n) for n in names))]

    labels = {"identify": "identify (+import dowhy)", "other": "setup+diagnostics"}
    rows = []
    for name in ("data", "identify", "estimate", "other", *REFUTERS):
        effects = [res[side]["effects"].get(name) for side in SIDES]
        agree = ""
        if effects[1] is not None and effects[2] is not None:
            gap = abs(effects[2] - effects[1]) / abs(estimate)
            agree = f"{gap:.2%} {'ok' if gap <= AGREEMENT else 'DIFF'}"
        scaled = name in REFUTERS and scale["stock_honest"] != 1
        rows.append(row(labels.get(name, name), seconds(name), effects if agree else None, agree, scaled))
    rows.append(row("TOTAL estimate+refuters", total(("estimate", *REFUTERS))))
    rows.append(row("TOTAL all stages", total(("data", "identify", "estimate", "other", *REFUTERS))))
    rows.append(row("process wall (measured)", [res[side]["process_wall"] for side in SIDES]))
    rows.append(row("process CPU s (measured)", [res[side]["cpu_s"] for side in SIDES]))
    memory = (
        ("main_peak_rss_mb", "peak RSS MB (main, VmHWM)"),
        ("peak_rss_mb", "peak RSS MB (tree sum)"),
        ("peak_pss_mb", "peak PSS MB (tree sum)"),
    )
    for key, label in memory:
        rows.append([label, *(f"{res[side][key]:.0f}" for side in SIDES)] + [""] * 6)
    refits = [res[side].get("propensity_refits_per_sim") for side in SIDES[:2]]
    cells = [" ".join(f"{v:g}" for v in r.values()) if r else "-" for r in refits]
    rows.append(["propensity refits/sim", *cells, "-", *[""] * 6])
    return rows


HEADER = ["stage", "stock shipped s", "stock honest s", "ours s", "x honest", "x shipped"]
HEADER += ["effect shipped", "effect honest", "effect ours", "ours vs honest"]


def print_table(n: int, res: dict, sims: int, repeats: int = 1) -> None:
    rows = [HEADER, *build_rows(res, sims)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    stock_sims = res["stock_honest"]["sims"]
    median = f", median of {repeats} runs per side" if repeats > 1 else ""
    print(f"\n## n = {n:,} rows, {sims} simulations per refuter{median}", end="")
    print(
        f" (stock DoWhy ran {stock_sims}, times scaled x{sims / stock_sims:g}: *)"
        if stock_sims != sims
        else ""
    )
    line = "  ".join("-" * w for w in widths)
    for i, cells in enumerate(rows):
        print(
            "  ".join(
                cell.ljust(w) if j == 0 else cell.rjust(w) for j, (cell, w) in enumerate(zip(cells, widths))
            )
        )
        if i == 0:
            print(line)
    print(
        "(ours vs honest: |difference| as a share of our estimate, ok within 1%. Refuter means are Monte Carlo\n"
        " averages over different random streams (DoWhy's RandomState, our SeedSequence.spawn), so with few\n"
        " simulations they differ by chance. setup+diagnostics: our pipeline's setup, sensitivity, balance and overlap checks.\n"
        " propensity refits/sim: LogisticRegression fits per simulation of each DoWhy refuter, counted; ours\n"
        " refits in every simulation by construction (tests/test_refuters.py checks it).)"
    )


def load_average() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="10k rows, 5 simulations: a smoke test under a minute"
    )
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated row counts")
    parser.add_argument("--sims", type=int, default=100, help="simulations per refuter")
    parser.add_argument(
        "--n-jobs", type=int, default=-1, help="our refuters' worker processes (-1: all cores)"
    )
    parser.add_argument(
        "--stock-n-jobs", type=int, default=1, help="DoWhy refuters' n_jobs (DoWhy's default: 1)"
    )
    parser.add_argument(
        "--stock-scale-from", type=int, default=1_000_000, help="rows from which DoWhy runs fewer sims"
    )
    parser.add_argument(
        "--stock-sims-large", type=int, default=6, help="DoWhy's simulations per refuter there"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per side below --repeat-below rows")
    parser.add_argument(
        "--repeat-below", type=int, default=100_000, help="(small sizes vary most run to run)"
    )
    parser.add_argument("--no-cli", action="store_true", help="skip timing the `causal run` command")
    parser.add_argument("--json", help="also write all measurements to this JSON file")
    parser.add_argument(
        "--ours-override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra override for our side, e.g. estimator.bias_adjust=false (DoWhy's plain matching)",
    )
    parser.add_argument(
        "--ours-before",
        metavar="TREE",
        help="also time our side from this source tree (an earlier commit: `git worktree add TREE COMMIT`), "
        "alternating with this one, against the same stock measurement",
    )
    parser.add_argument("--paired-repeats", type=int, default=5, help="runs of each with --ours-before")
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(args)
        return 0
    if args.ours_override:
        os.environ[OURS_OVERRIDES] = " ".join(args.ours_override)
        print(f"# our side with {' '.join(args.ours_override)}")
    sizes = [10_000] if args.quick else [int(s) for s in args.sizes.split(",") if s]
    sims = 5 if args.quick else args.sims
    if args.quick:
        args.repeats = 1
    print(
        f"# stock DoWhy vs causal-cli: psm (ATE) + {', '.join(REFUTERS)}; product_growth, confounding strong"
    )
    print(
        f"# python {sys.version.split()[0]}, {os.cpu_count()} cores, load average at start {load_average()}"
    )
    report: dict = {"sims": sims, "sizes": {}, "load_start": load_average()}
    for n in sizes:
        stock_sims = min(sims, args.stock_sims_large) if n >= args.stock_scale_from else sims
        repeats = args.repeats if n < args.repeat_below else 1
        res = {
            side: median_run(side, n, stock_sims if side != "ours" else sims, args, repeats) for side in SIDES
        }
        print_table(n, res, sims, repeats)
        report["sizes"][n] = res
        if args.ours_before:
            res["paired"] = paired_before_after(n, sims, args, res["stock_honest"])
        if not args.no_cli:
            # the real command on the same data: output files, pictures and its helper process included
            cli = time_causal_run(n, sims, args.n_jobs)
            line = (
                f"\n`causal run` at n = {n:,} ({sims} sims per refuter), end to end: {cli['wall']:.2f} s, "
                f"peak RSS {cli['peak_rss_mb']:.0f} MB / PSS {cli['peak_pss_mb']:.0f} MB summed over its processes"
            )
            if n == sizes[0]:
                cli["import_dowhy"] = time_import_dowhy()
                line += (
                    f"; `python -c 'import dowhy'`: {cli['import_dowhy']:.2f} s "
                    f"(ratio {cli['wall'] / cli['import_dowhy']:.2f}, target < 2)"
                )
            print(line)
            report.setdefault("causal_run", {})[n] = cli
    print(f"# load average at end {load_average()}")
    report["load_end"] = load_average()
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
