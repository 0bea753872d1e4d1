"""Runs a shard of the hostile-input corpus in one process and classifies each outcome.

``python -m tests.hostile_runner CORPUS.json RESULTS.jsonl SANDBOX RUNS`` (cwd = SANDBOX). Each input ends as
``error`` (a clean one-line error naming what is wrong), ``ok`` (a correct success) or ``misbehaviour``
with the reason: code executed (the marker file exists), a traceback or several error lines printed, a
hang past the timeout, exit status and results.json disagreeing, a secret in a file of the run folder,
a file written or changed outside the run folder, or an internal (unexpected) exception.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import math
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from pathlib import Path

#: seconds before an input counts as a hang (valid runs take well under one; the machine may be loaded)
HANG_S = {"cli": 120, "config": 120, "expr": 30, "datafile": 120}
FAST = {
    "dgp.n": "200",
    "refuters": "[]",
    "report.console": "false",
    "report.enabled": "false",
    "refuters.n_jobs": "1",
}
SECRETS = ("hunter2",)


class Hang(BaseException):
    pass


def _on_alarm(signum, frame):
    raise Hang()


def fill(text: str, ctx: dict) -> str:
    for key, value in ctx.items():
        text = text.replace("{" + key + "}", str(value))
    return text


def snapshot(folder: Path) -> dict[str, tuple]:
    out = {}
    for path in folder.rglob("*"):
        try:
            st = path.lstat()
        except OSError:
            continue
        out[str(path.relative_to(folder))] = (st.st_size, st.st_mtime_ns, path.is_symlink())
    return out


def digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def secret_in(folder: Path, secrets: tuple[str, ...]) -> str | None:
    if not folder.is_dir():
        return None
    for path in folder.rglob("*"):
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 50_000_000:
            continue
        data = path.read_bytes()
        for secret in secrets:
            if secret.encode() in data:
                return f"secret found in {path.name}"
    return None


def one_line_problem(code, stderr: str) -> str | None:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    if "Traceback" in stderr:
        return "traceback printed"
    if code == 0:
        return None
    if len(lines) != 1:
        return f"{len(lines)} stderr lines: {lines[:2]}"
    if not lines[0].startswith("causal: "):
        return f"error line without the 'causal:' prefix: {lines[0][:120]}"
    if "internal error" in lines[0]:
        return f"internal error: {lines[0][:200]}"
    return None


class Runner:
    def __init__(self, sandbox: Path, runs: Path):
        self.sandbox, self.runs = sandbox, runs
        self.secret = os.environ["CAUSAL_HOSTILE_SECRET"]
        self.bases: dict[tuple, object] = {}
        self.frame = None

    def context(self, case) -> dict:
        return {
            "sandbox": self.sandbox,
            "marker": self.sandbox / f"PWNED-{case['id']}",
            "victim": self.sandbox / "victim",
            "run": self.runs / str(case["id"]),
        }

    # ---------------------------------------------------------------------------------- layers
    def cli(self, case, ctx) -> tuple[str, str | None]:
        from causal_cli.cli import main

        payload = case["payload"]
        argv = [fill(a, ctx) for a in payload["argv"]]
        run_dir = Path(fill(payload.get("run_dir", "{run}"), ctx))
        planted = set()
        for rel, target in payload.get("plant") or []:
            link = run_dir / rel
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(self.sandbox / target)
            planted.add(rel)
        if argv[0] == "run" and payload.get("fast", True):
            mentioned = " ".join(argv)
            argv += [f"{k}={v}" for k, v in FAST.items() if k not in mentioned]
            if "hydra.run.dir" not in mentioned:
                argv.append(f"hydra.run.dir={run_dir}")
        err, out = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main(argv)
        stderr = err.getvalue()
        problem = one_line_problem(code, stderr)
        if problem:
            return "misbehaviour", problem
        if "Traceback" in out.getvalue():
            return "misbehaviour", "traceback on stdout"
        if argv[0] == "run":
            results = run_dir / "results.json"
            status = None
            if results.exists() and "results.json" not in planted:
                try:
                    status = json.loads(results.read_text(encoding="utf-8")).get("status")
                except ValueError:
                    return "misbehaviour", "results.json is not valid JSON"
            expected = {0: "ok", 1: "failed", 2: None, 130: "interrupted", 143: "interrupted"}.get(code, "?")
            info = any(a.split("=")[0] in ("--cfg", "-c", "--help", "--info", "--hydra-help") for a in argv)
            consistent = status == expected or (info and code == 0 and status is None)
            if not consistent and not (code == 1 and status is None and "output error" in stderr):
                return "misbehaviour", f"exit {code} but results.json status {status!r}"
            found = secret_in(run_dir, (self.secret, *SECRETS))
            if found:
                return "misbehaviour", found
        if payload.get("expect") == "error" and code == 0:
            return "misbehaviour", "expected a one-line error, got success"
        return ("ok" if code == 0 else "error"), None

    def base(self, overrides: tuple):
        if overrides not in self.bases:
            from hydra import compose, initialize_config_dir
            from hydra.core.global_hydra import GlobalHydra

            from causal_cli.schema import register_configs
            from causal_cli.task import VERSION_BASE, conf_dir

            register_configs()
            extra = [
                f"{k}={v}"
                for k, v in FAST.items()
                if not (k == "refuters" and any("refuters=" in o for o in overrides))
            ]
            extra += [
                f"refuters.{name}.num_simulations=3"
                for o in overrides
                if o.startswith("refuters=[")
                for name in o[len("refuters=[") : -1].split(",")
            ]
            GlobalHydra.instance().clear()
            with initialize_config_dir(config_dir=str(conf_dir()), version_base=VERSION_BASE):
                self.bases[overrides] = compose("config", overrides=[*overrides, *extra])
            GlobalHydra.instance().clear()
        return self.bases[overrides]

    def config(self, case, ctx, base_overrides=(), overrides=()) -> tuple[str, str | None]:
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from omegaconf import OmegaConf

        from causal_cli.cli import hydra_error_line

        payload = case["payload"]
        cfg = self.base(tuple(fill(o, ctx) for o in (*payload.get("base", ()), *base_overrides))).copy()
        try:
            for text in [*payload.get("overrides", ()), *overrides]:
                override = OverridesParser.create().parse_overrides([fill(text, ctx)])[0]
                if override.is_sweep_override():
                    raise ValueError(f"Ambiguous value for argument '{text}' (a sweep without -m)")
                key = override.get_key_element()
                if override.is_delete():
                    OmegaConf.update(cfg, key, None, merge=False)
                    continue
                OmegaConf.set_struct(cfg, not key.startswith("+"))
                OmegaConf.update(cfg, key.lstrip("+"), override.value(), merge=True)
                OmegaConf.set_struct(cfg, True)
        except Exception as exc:  # noqa: BLE001 - what Hydra would report at compose time
            line = hydra_error_line(exc)
            if "\n" in line or "internal error" in line:
                return "misbehaviour", f"compose error not one line: {line[:200]}"
            return "error", None
        return self.validate_and_run(cfg, ctx)

    def validate_and_run(self, cfg, ctx) -> tuple[str, str | None]:
        from causal_cli import pipeline
        from causal_cli.errors import CausalCliError
        from causal_cli.validate import validate

        try:
            typed = validate(cfg)
        except CausalCliError as exc:
            return ("error", None) if "\n" not in exc.one_line() else ("misbehaviour", "multi-line error")
        except Exception as exc:  # noqa: BLE001
            return (
                "misbehaviour",
                f"validation raised {type(exc).__name__}: {' '.join(str(exc).split())[:160]}",
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = pipeline.run(typed, base_dir=str(self.sandbox))
        except CausalCliError as exc:
            return ("error", None) if "\n" not in exc.one_line() else ("misbehaviour", "multi-line error")
        except Exception as exc:  # noqa: BLE001
            return "misbehaviour", f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())[:160]}"
        if result.estimate is None or not math.isfinite(result.estimate):
            return "misbehaviour", f"status ok with a non-finite estimate {result.estimate!r}"
        text = json.dumps(result.to_dict(), default=str)
        if self.secret in text or any(s in text for s in SECRETS):
            return "misbehaviour", "secret in the results"
        return "ok", None

    def expr(self, case, ctx) -> tuple[str, str | None]:
        import pandas as pd

        from causal_cli.data.expr import evaluate
        from causal_cli.errors import CausalCliError

        if self.frame is None:
            n = 200
            self.frame = pd.DataFrame(
                {
                    "age": [1 + i % 7 for i in range(n)],
                    "spend": [float("nan") if i % 17 == 0 else 3.5 * i for i in range(n)],
                    "name": [["a", "bb", "ccc"][i % 3] for i in range(n)],
                    "flag": [i % 2 == 0 for i in range(n)],
                }
            )
        payload = case["payload"]
        key = "data.derive.x" if payload["kind"] == "derive" else "data.query"
        try:
            value = evaluate(fill(payload["expression"], ctx), self.frame, key)
        except CausalCliError as exc:
            return ("error", None) if "\n" not in exc.one_line() else ("misbehaviour", "multi-line error")
        except Exception as exc:  # noqa: BLE001
            return "misbehaviour", f"evaluate raised {type(exc).__name__}: {' '.join(str(exc).split())[:160]}"
        size = value.memory_usage(deep=True) if isinstance(value, pd.Series) else sys.getsizeof(value)
        if size > 50_000_000:
            return "misbehaviour", f"result of {size:,} bytes"
        return "ok", None

    def datafile(self, case, ctx) -> tuple[str, str | None]:
        payload = case["payload"]
        path = self.sandbox / "data" / f"{case['id']}-{payload['name']}.csv"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(base64.b64decode(payload["content"]))
        return self.config(case, ctx, base_overrides=("data=csv",), overrides=(f"data.path='{path}'",))

    # ---------------------------------------------------------------------------------- one input
    def run(self, case) -> dict:
        ctx = self.context(case)
        victim = digest(self.sandbox / "victim")
        before = snapshot(self.sandbox)
        markers = set(self.sandbox.glob("PWNED*"))
        runs_before = set(os.listdir(self.runs))
        started = time.perf_counter()
        limit = HANG_S[case["layer"]]
        # a hang raises Hang every 5 s past the limit (a library may swallow one); past twice the limit
        # the runner exits, and the test records the input as a misbehaviour and starts a new runner
        signal.setitimer(signal.ITIMER_REAL, limit, 5)
        watchdog = threading.Timer(2 * limit, os._exit, (3,))
        watchdog.daemon = True
        watchdog.start()
        try:
            outcome, reason = getattr(self, case["layer"])(case, ctx)
        except Hang:
            outcome, reason = "misbehaviour", f"hang past {limit} s"
        except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt, anything
            outcome = "misbehaviour"
            reason = f"uncaught {type(exc).__name__}: {traceback.format_exc().strip().splitlines()[-1][:160]}"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            watchdog.cancel()
        seconds = time.perf_counter() - started
        if set(self.sandbox.glob("PWNED*")) - markers:
            outcome, reason = "misbehaviour", "code executed (marker file created)"
        elif digest(self.sandbox / "victim") != victim:
            outcome, reason = "misbehaviour", "a file outside the run folder was changed (victim)"
        else:
            after = snapshot(self.sandbox)
            changed = [p for p, st in after.items() if before.get(p) != st and not p.startswith("data")]
            extra = set(os.listdir(self.runs)) - runs_before - {str(case["id"])}
            if changed or extra:
                outcome, reason = (
                    "misbehaviour",
                    f"written outside the run folder: {(changed or sorted(extra))[:3]}",
                )
        return {"id": case["id"], "outcome": outcome, "reason": reason, "seconds": round(seconds, 3)}


def main() -> None:
    corpus_path, results_path, sandbox, runs = sys.argv[1:5]
    os.environ.pop("CAUSAL_DEBUG", None)
    signal.signal(signal.SIGALRM, _on_alarm)
    runner = Runner(Path(sandbox), Path(runs))
    cases = json.loads(Path(corpus_path).read_text(encoding="utf-8"))
    with open(results_path, "w", encoding="utf-8") as out:
        for case in cases:
            out.write(json.dumps(runner.run(case)) + "\n")
            out.flush()


if __name__ == "__main__":
    main()
