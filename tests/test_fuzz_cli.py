"""CLI fuzzing: hundreds of random and malformed overrides to ``causal run``.

Every input must end with a clean one-line error on stderr (no traceback, exit status 1 or 2) or a
valid run (exit status 0 and ``results.json`` with status ok), and never hang. One subprocess runs
the whole corpus in-process through ``causal_cli.cli.main`` (Hydra clears its global state after
every call) with a per-input alarm; a handful of inputs also go through the real command.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from causal_cli import registry
from tests.conftest import causal_executable

SEED = 20251128
#: seconds one input may take before it counts as a hang (valid runs take well under one)
HANG_SECONDS = 60
#: random inputs on top of the handwritten ones, and runner processes sharing them
RANDOM_INPUTS = 70
SHARDS = 2
#: info flags: exit 0 without a run folder is right for them
INFO_FLAGS = (
    "--cfg",
    "-c",
    "--help",
    "-h",
    "--hydra-help",
    "--info",
    "-i",
    "--version",
    "--shell-completion",
)
#: appended (unless the input sets the key) so valid inputs run in a fraction of a second
FAST = {
    "dgp.n": "200",
    "refuters": "[]",
    "report.console": "false",
    "report.enabled": "false",
    "refuters.n_jobs": "1",
}

KEYS = [
    "seed",
    "question",
    "reference",
    "reference_kind",
    "dgp.n",
    "dgp.seed",
    "dgp.true_effect",
    "dgp.noise_sd",
    "dgp.confounding",
    "estimator.k",
    "estimator.caliper",
    "estimator.ci.level",
    "estimator.ci.method",
    "estimator.ci.num_bootstrap",
    "estimator.target_units",
    "estimator.propensity_C",
    "estimator.name",
    "graph.treatment",
    "graph.outcome",
    "graph.confounders",
    "graph.edges",
    "graph.unobserved",
    "refuters.n_jobs",
    "refuters.placebo.num_simulations",
    "identification.backdoor_method",
    "report.console",
    "data.source",
    "dgp.kind",
    "estimator",
    "dgp",
    "graph",
    "data",
    "refuters",
    "experiment",
]
VALUES = [
    "",
    "0",
    "-1",
    "1",
    "20",
    "200",
    "1.5",
    "-0.5",
    "1e308",
    "-1e308",
    "1e-320",
    "nan",
    "inf",
    "-inf",
    "10000000000000000000000000000",
    "-99999999999999999999",
    "true",
    "false",
    "null",
    "abc",
    "'quoted'",
    '"dq"',
    "[]",
    "[1,2]",
    "[a,b",
    "{}",
    "{a: 1}",
    "{a:",
    "(",
    ")",
    "]",
    "[",
    "'",
    '"',
    "\\",
    "${",
    "${seed}",
    "${oc.env:HOME}",
    "${now:%Y}",
    "${oc.decode:'[1'}",
    "${nope:1}",
    "é",
    "日本語",
    "🙂",
    "\u202e",
    "\u200b",
    "٣",
    "a,b",
    "range(1,3)",
    "choice(1,2)",
    "interval(0,1)",
    "x" * 5000,
    "../../etc/passwd",
    "/dev/null",
    "a -> b",
    "psm",
    "naive",
    "none",
    "weak",
    "strong",
    "ate",
    "att",
    "atc",
    "bootstrap",
    "analytic",
]
PREFIXES = ["", "", "", "+", "++", "~", "@", "-", "--", "=", "+~", " "]
SYMBOLS = "=[]{}(),'\"\\$~+@:.-_ /%*!#&|<>?;`^"

HANDWRITTEN = [
    # unknown keys / groups / options
    ["foo=1"],
    ["estimator.foo=1"],
    ["dgp.nn=300"],
    ["+foo=1"],
    ["++foo=1"],
    ["+estimator.foo=1"],
    ["estimator=nope"],
    ["dgp=nope"],
    ["graph=nope"],
    ["data=nope"],
    ["refuters=[nope]"],
    ["experiment=nope"],
    ["refuters.nope.num_simulations=3"],
    ["compare.nope={}"],
    ["estimator=../../etc/passwd"],
    ["experiment=../experiments/product_uplift"],
    ["graph=/etc/passwd"],
    # wrong types
    ["dgp.n=abc"],
    ["dgp.n=1.5"],
    ["dgp.n=true"],
    ["dgp.n=[1]"],
    ["dgp.n={}"],
    ["dgp.n=null"],
    ["seed=-1"],
    ["seed=abc"],
    ["seed=1.5"],
    ["seed=null"],
    ["seed=true"],
    ["estimator.ci.level=abc"],
    ["refuters.n_jobs=x"],
    ["refuters.n_jobs=1.5"],
    ["refuters.n_jobs=true"],
    ["dgp.confounding=extreme"],
    ["estimator.target_units=foo"],
    ["estimator.k=0"],
    ["estimator.k=-3"],
    ["estimator.k=abc"],
    ["estimator.caliper=abc"],
    ["estimator.caliper=0"],
    ["estimator.propensity_C=0"],
    ["estimator.ci.method=magic"],
    ["estimator.ci.num_bootstrap=1"],
    ["reference=abc"],
    ["reference=[1]"],
    ["reference_kind=7"],
    ["identification.backdoor_method=nope"],
    ["graph.treatment=nope"],
    ["graph.outcome=nope"],
    ["graph.treatment=spend"],
    ["graph.confounders=[nope]"],
    ["graph.edges=[spend -> feature_used]"],
    ["graph.edges=['a ->']"],
    ["graph.edges=[x]"],
    ["graph.edges=7"],
    ["graph.confounders=7"],
    ["graph.unobserved=[account_age]"],
    ["report.console=maybe"],
    ["data.source=nope"],
    ["dgp.kind=nope"],
    ["dgp.noise_sd=-1"],
    ["dgp.true_effect=abc"],
    ["dgp.treatment_coef={nope: 1}"],
    ["estimator.ci.level=0"],
    ["estimator.ci.level=1"],
    ["estimator.ci.level=-0.2"],
    ["estimator.ci.level=nan"],
    ["estimator.ci.level=inf"],
    ["dgp.n=-5"],
    ["dgp.n=0"],
    ["dgp.n=19"],
    ["estimator.caliper=-1"],
    ["refuters=[placebo]", "refuters.placebo.num_simulations=0"],
    ["refuters=[placebo]", "refuters.placebo.num_simulations=-1"],
    ["refuters=[placebo]", "refuters.placebo.placebo_type=nope"],
    ["refuters=[data_subset]", "refuters.data_subset.subset_fraction=1.5"],
    ["refuters=[data_subset]", "refuters.data_subset.subset_fraction=0"],
    # unbalanced brackets and quotes
    ["refuters=[placebo"],
    ["refuters=placebo]"],
    ["graph.confounders=[a,b"],
    ["dgp.n=]"],
    ["x={"],
    ["a=("],
    ["question='unterminated"],
    ['question="unterminated'],
    ["question=a'b"],
    ['graph.edges=["a -> b"'],
    ["dgp.treatment_coef={account_age: 1"],
    ["seed=${"],
    ["seed=${seed"],
    ["seed=}"],
    # huge numbers
    ["dgp.n=100000000000000000000000000000"],
    ["dgp.n=1e308"],
    ["dgp.n=9223372036854775808"],
    ["seed=18446744073709551616"],
    ["seed=99999999999999999999999"],
    ["estimator.k=1000000000000"],
    ["dgp.true_effect=1e308"],
    ["dgp.noise_sd=1e308"],
    ["dgp.true_effect=-1e308"],
    ["dgp.n=2147483648"],
    ["refuters=[placebo]", "refuters.placebo.num_simulations=1000000000000"],
    ["estimator.caliper=1e-320"],
    ["estimator.ci.num_bootstrap=1000000000000"],
    ["estimator.propensity_C=1e308"],
    ["refuters.n_jobs=-100000"],
    ["refuters.n_jobs=100000000000"],
    ["reference=1e400"],
    ["dgp.seed=-1"],
    ["dgp.seed=1e30"],
    # unicode
    ["question=日本語の質問"],
    ["graph.treatment=é"],
    ["dgp.n=٣٠٠"],
    ["estimator=psm\u200b"],
    ["🙂=1"],
    ["question=\u202eevil"],
    ["graph.outcome_units=€"],
    ["estimator.name=ñ"],
    ["dgp.confounding=ｗｅａｋ"],
    ["seed=１"],
    ["ＳＥＥＤ=1"],
    ["question=\U0001f600" * 50],
    # code in strings that reach pandas query/eval
    *[
        ["data=csv", "data.path={csv}", expression]
        for expression in (
            "data.query=__import__('os').system('touch {pwned}')",
            "+data.derive.x=__import__('os').system('touch {pwned}')",
            "data.query=@__builtins__",
            "data.query=spend.__class__.__mro__",
            "data.query=().__class__.__bases__[0].__subclasses__()",
            "data.query=open('/etc/passwd')",
            "data.query=lambda: 1",
            "data.query=spend >",
            "data.query=nope > 1",
            "data.query=spend > 1e9",
            "data.query=spend > 10",
            "+data.derive.x=spend ** 2",
            "+data.derive.x='a' * 10 ** 12",
        )
    ],
    ["data=csv", "data.path=/nonexistent.csv"],
    ["data=csv", "data.path=/"],
    ["data=csv", "data.path="],
    ["data=csv", "data.path={csv}", "data.sep=;"],
    ["data=csv"],
    ["data=parquet", "data.path={csv}"],
    ["data=sql"],
    # empty strings and bare operators
    [""],
    ["="],
    ["=5"],
    ["dgp.n="],
    ["estimator="],
    ["refuters="],
    ["graph.treatment="],
    [" "],
    ["  =  "],
    ["~"],
    ["+"],
    ["++"],
    ["@"],
    ["~="],
    ["+="],
    ["++="],
    ["@x=1"],
    ["~~seed"],
    ["~seed"],
    ["~dgp"],
    ["~estimator"],
    ["~graph"],
    ["~data"],
    ["~refuters"],
    ["~report"],
    ["+seed=1"],
    ["++seed=1"],
    ["++dgp.n=300"],
    ["+dgp.new=1"],
    ["~dgp.n"],
    ["seed"],
    ["dgp.n"],
    ["."],
    [".="],
    ["..=1"],
    ["a..b=1"],
    ["seed.=1"],
    ["-x"],
    ["--foo"],
    ["-"],
    ["--"],
    ["--cfg"],
    ["--cfg", "nope"],
    ["--package"],
    ["--config-name=nope"],
    ["--config-path=/nonexistent"],
    ["--config-dir=/nonexistent"],
    ["--info", "nope"],
    ["--resolve"],
    ["--experimental-rerun", "/nonexistent"],
    ["-cn", "nope"],
    # interpolation and sweep syntax without -m
    ["seed=${seed}"],
    ["seed=${oc.env:HOME}"],
    ["seed=${oc.env:NO_SUCH_VARIABLE_XYZ}"],
    ["seed=${now:%Y}"],
    ["question=${oc.env:HOME}"],
    ["seed=${nope:1}"],
    ["seed=${oc.decode:'[1'}"],
    ["dgp.n=${dgp.seed}"],
    ["seed=1,2"],
    ["seed=range(1,3)"],
    ["seed=choice(1,2)"],
    ["seed=interval(0,1)"],
    ["seed=glob(*)"],
    ["estimator=naive,psm"],
    ["seed=tag(a,1)"],
    ["seed=sort(3,1)"],
    ["seed=shuffle(1,2)"],
    # hydra settings (the run folder is the user's explicit choice, but must fail cleanly)
    ["hydra.run.dir=/proc/nope/x"],
    ["hydra.run.dir=/dev/null"],
    ["hydra.job.chdir=maybe"],
    ["hydra.nope=1"],
    ["hydra/launcher=nope"],
    ["hydra.verbose=nope"],
    ["hydra.output_subdir=/dev/null"],
    # valid runs
    ["seed=7"],
    ["estimator=naive"],
    ["dgp.confounding=weak"],
    ["dgp.confounding=none"],
    ["question=日本語"],
    ["estimator.caliper=0.2"],
    ["estimator.target_units=att"],
    ["estimator.ci.level=0.9"],
    ["dgp.n=٣٠٠"],
    ["--cfg", "job"],
    ["--info", "config"],
    ["seed=${oc.env:NO_SUCH_VARIABLE_XYZ,3}"],
    ["estimator=ipw"] if "ipw" in registry.ESTIMATORS else ["seed=9"],
    ["dgp=heterogeneous"] if "heterogeneous" in registry.DGPS else ["seed=10"],
]


def random_inputs(rng: random.Random, count: int) -> list[list[str]]:
    """Key/value combinations from the lists above, random prefixes, and symbol soup."""
    inputs = []
    for _ in range(count):
        style = rng.random()
        if style < 0.45:
            item = f"{rng.choice(PREFIXES)}{rng.choice(KEYS)}={rng.choice(VALUES)}"
        elif style < 0.65:
            key = rng.choice(KEYS)
            item = f"{key}={''.join(rng.choice(SYMBOLS + 'abc019') for _ in range(rng.randint(1, 12)))}"
        elif style < 0.8:
            item = "".join(rng.choice(SYMBOLS + "ab1") for _ in range(rng.randint(1, 20)))
        elif style < 0.9:
            item = "".join(
                chr(
                    rng.choice(
                        [rng.randint(0x21, 0x7E), rng.randint(0xA0, 0x2FFF), rng.randint(0x1F300, 0x1F6FF)]
                    )
                )
                for _ in range(rng.randint(1, 15))
            )
        else:
            item = f"{rng.choice(KEYS)}.{rng.choice(KEYS)}={rng.choice(VALUES)}"
        extra = [f"{rng.choice(KEYS)}={rng.choice(VALUES)}"] if rng.random() < 0.25 else []
        inputs.append([item, *extra])
    return inputs


def filled(inputs: list[list[str]], tmp_path: Path) -> list[list[str]]:
    """Point ``{csv}`` at a small real table and ``{pwned}`` at a file no input may create."""
    csv_path = tmp_path / "study.csv"
    csv_path.write_text(
        "account_age,activity,feature_used,spend\n"
        + "".join(
            f"{1 + i % 7},{2 + (i * 37) % 11},{int(i % 3 == 0)},{5 + i % 13 + 3 * (i % 3 == 0)}\n"
            for i in range(240)
        )
    )
    fill = {"{csv}": str(csv_path), "{pwned}": str(tmp_path / "PWNED")}
    out = []
    for args in inputs:
        for marker, value in fill.items():
            args = [a.replace(marker, value) for a in args]
        out.append(args)
    return out


def with_fast_settings(args: list[str], run_dir: Path) -> list[str]:
    """Append fast settings and a run folder for every key the input does not set itself."""
    mentioned = " ".join(args)
    extra = [f"{k}={v}" for k, v in FAST.items() if k not in mentioned]
    if "hydra.run.dir" not in mentioned:
        extra.append(f"hydra.run.dir={run_dir}")
    return [*args, *extra]


RUNNER = r"""
import contextlib, io, json, os, signal, sys, time, traceback
from pathlib import Path

class Hang(BaseException):
    pass

def on_alarm(signum, frame):
    raise Hang()

corpus_path, results_path, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3])
corpus = json.loads(Path(corpus_path).read_text())
from causal_cli.cli import main
signal.signal(signal.SIGALRM, on_alarm)
with open(results_path, "w") as out:
    for i, item in enumerate(corpus):
        os.environ.pop("CAUSAL_DEBUG", None)
        err, std = io.StringIO(), io.StringIO()
        record = {"i": item["i"], "code": None, "hang": False, "uncaught": None}
        started = time.perf_counter()
        signal.alarm(timeout)
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
                record["code"] = main(["run", *item["args"]])
        except Hang:
            record["hang"] = True
        except BaseException:
            record["uncaught"] = traceback.format_exc()
        finally:
            signal.alarm(0)
        record["stderr"], record["stdout"] = err.getvalue(), std.getvalue()[-2000:]
        record["seconds"] = round(time.perf_counter() - started, 3)
        out.write(json.dumps(record) + "\n")
        out.flush()
"""


def problems_of(args: list[str], run_dir: Path, code, stderr: str, stdout: str, hang=False, uncaught=None):
    """Why this outcome is not 'a clean one-line error or a valid run' (None if it is)."""
    if hang:
        return "hang"
    if uncaught:
        return f"uncaught: {uncaught.strip().splitlines()[-1]}"
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    if "Traceback" in stderr or "Traceback" in stdout:
        return f"traceback: {stderr[-300:]}"
    if code == 0:
        if any(a.split("=")[0] in INFO_FLAGS for a in args):
            return None
        results = run_dir / "results.json"
        status = json.loads(results.read_text()).get("status") if results.is_file() else "no results.json"
        return None if status == "ok" and not lines else f"exit 0 but status={status}, stderr={lines[:2]}"
    if code not in (1, 2):
        return f"exit status {code!r}"
    if len(lines) != 1:
        return f"{len(lines)} stderr lines: {lines[:3]}"
    if "internal error" in lines[0]:
        return f"internal error: {lines[0]}"
    return None


def test_hundreds_of_malformed_overrides_end_in_one_line_errors_or_valid_runs(tmp_path):
    inputs = filled(HANDWRITTEN + random_inputs(random.Random(SEED), RANDOM_INPUTS), tmp_path)
    assert len(inputs) >= 300
    items = [
        {"i": i, "args": with_fast_settings(args, tmp_path / "runs" / str(i))}
        for i, args in enumerate(inputs)
    ]
    shards = []
    for k in range(SHARDS):  # one runner process per core
        (tmp_path / f"corpus{k}.json").write_text(json.dumps(items[k::SHARDS]))
        shards.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    RUNNER,
                    str(tmp_path / f"corpus{k}.json"),
                    str(tmp_path / f"results{k}.jsonl"),
                    str(HANG_SECONDS),
                ],
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "COLUMNS": "80", "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
            )
        )
    errors = [proc.communicate(timeout=1200)[1] for proc in shards]
    records = sorted(
        (
            json.loads(line)
            for k in range(SHARDS)
            for line in (tmp_path / f"results{k}.jsonl").read_text().splitlines()
        ),
        key=lambda r: r["i"],
    )
    assert [r["i"] for r in records] == list(range(len(items))), "\n".join(e[-2000:] for e in errors)
    failures = []
    for rec, item in zip(records, items):
        run_dir = tmp_path / "runs" / str(rec["i"])
        problem = problems_of(
            item["args"], run_dir, rec["code"], rec["stderr"], rec["stdout"], rec["hang"], rec["uncaught"]
        )
        if problem:
            failures.append(f"{inputs[rec['i']]!r}: {problem}")
    valid = sum(1 for r in records if r["code"] == 0)
    assert not failures, f"{len(failures)} of {len(records)} inputs misbehaved:\n" + "\n".join(failures[:40])
    assert valid >= 20  # the corpus also exercises real runs, not only errors
    assert not (tmp_path / "PWNED").exists()  # __import__ in data.query/derive never ran


REAL_COMMAND = [
    ["refuters=[placebo"],
    ["dgp.n=abc"],
    ["🙂=1"],
    ["dgp.n=100000000000000000000000000000"],
    ["--foo"],
    ["="],
    ["~estimator"],
    ["seed=1,2"],
    ["data=csv", "data.path={csv}", "data.query=__import__('os').system('touch {pwned}')"],
    ["estimator=naive"],
]


def test_malformed_overrides_through_the_real_command(tmp_path):
    procs = []
    for i, args in enumerate(filled(REAL_COMMAND, tmp_path)):
        full = with_fast_settings(args, tmp_path / "runs" / str(i))
        procs.append(
            (
                args,
                tmp_path / "runs" / str(i),
                subprocess.Popen(
                    causal_executable() + ["run", *full],
                    cwd=tmp_path,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env={**os.environ, "COLUMNS": "80"},
                ),
            )
        )
    failures = []
    for args, run_dir, proc in procs:
        stdout, stderr = proc.communicate(timeout=HANG_SECONDS * 2)
        problem = problems_of(args, run_dir, proc.returncode, stderr, stdout)
        if problem:
            failures.append(f"{args!r}: {problem}")
    assert not failures, "\n".join(failures)
    assert not (tmp_path / "PWNED").exists()


#: found by this fuzzing (a hang and an internal error), fixed since; kept as regression cases
FOUND_ISSUES = {
    "power_tower": (
        ["data=csv", "data.path={csv}", "+data.derive.x=9 ** 9 ** 9"],
        "data/expr.py evaluates constant powers with Python integers: 9 ** 9 ** 9 runs for minutes",
    ),
    "encoding": (
        ["data=csv", "data.path={csv}", "data.encoding=nope"],
        "data/csv.py: an unknown data.encoding ends as 'internal error: LookupError'",
    ),
}


@pytest.mark.parametrize("issue", sorted(FOUND_ISSUES))
def test_issues_found_by_fuzzing_stay_fixed(tmp_path, issue):
    args, reason = FOUND_ISSUES[issue]
    (args,) = filled([args], tmp_path)
    run_dir = tmp_path / "run"
    try:
        proc = subprocess.run(
            causal_executable() + ["run", *with_fast_settings(args, run_dir)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COLUMNS": "80"},
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"hang: {reason}")
    problem = problems_of(args, run_dir, proc.returncode, proc.stderr, proc.stdout)
    assert not problem, f"{problem}: {reason}"
    expected = {"power_tower": "exponent", "encoding": "not a known text encoding"}[issue]
    assert proc.returncode != 0 and expected in proc.stderr
