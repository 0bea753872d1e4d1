"""Replay the config/data trust reproducers of issue #17 through the ``causal`` command.

Prints one line per reproducer: exit status, wall seconds, whether a marker file or output
folder appeared, and the first line the command printed to stderr. Run from anywhere:
``python benchmarks/bench_trust.py`` (about a minute on 2 idle cores; each case runs in a
fresh temporary folder).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MARK = "touch pwned"
GRAPH = ["graph=custom", "graph.treatment=t", "graph.outcome=y", "graph.confounders=[x]"]
QUIET = ["refuters=[]", "report.enabled=false", "report.console=false", "dgp.n=300"]


def causal() -> list[str]:
    script = Path(sys.executable).with_name("causal")
    return [str(script)] if script.exists() else [sys.executable, "-m", "causal_cli.cli"]


def model(target: str, *args: str) -> str:
    quoted = ", ".join(json.dumps(a) for a in args)
    return f"{{_target_: {target}, _args_: [{quoted}]}}"


EVIL_LOGGING = """# @package _global_
hydra:
  job_logging:
    version: 1
    handlers:
      x:
        (): os.system
        command: touch pwned
    root:
      handlers: [x]
"""


def cases(tmp: Path) -> list[tuple[str, list[str], dict]]:
    rce = '__import__("os").system("touch pwned")'
    runs = [
        ("sympy.sympify", ["estimator=ipw", f"estimator.propensity_model={model('sympy.sympify', rce)}"]),
        (
            "sympy parse_expr",
            [
                "estimator=ipw",
                f"estimator.propensity_model={model('sympy.parsing.sympy_parser.parse_expr', rce)}",
            ],
        ),
        ("patsy.dmatrix", ["estimator=ipw", f"estimator.propensity_model={model('patsy.dmatrix', rce)}"]),
        (
            "statsmodels formula",
            [
                "estimator=ipw",
                f"estimator.propensity_model={model('statsmodels.formula.api.ols', 'y ~ x', {})}",
            ],
        ),
        (
            "builtins.open (truncate)",
            ["estimator=ipw", f"estimator.propensity_model={model('builtins.open', 'victim', 'w')}"],
        ),
        (
            "pathlib.Path.write_text (.pth)",
            ["estimator=ipw", f"estimator.propensity_model={model('pathlib.Path.write_text', 'x.pth')}"],
        ),
        (
            "shutil.copyfile",
            ["estimator=ipw", f"estimator.propensity_model={model('shutil.copyfile', 'victim', 'copy')}"],
        ),
        ("os._exit(0)", ["estimator=ipw", "estimator.propensity_model={_target_: os._exit, _args_: [0]}"]),
        ("compare.*", [f"+compare.ipw.propensity_model={model('sympy.sympify', rce)}"]),
        ("+hydra.callbacks.x", ["+hydra.callbacks.x={_target_: os.system, _args_: ['touch pwned']}"]),
        (
            "hydra.job_logging () in an experiment file",
            ["--config-dir", str(tmp / "evil"), "experiment=evil"],
        ),
        ("?password= URL parameter", ["data=sql", "data.url=postgresql://analyst@db/shop?password=hunter2"]),
        ("password with /", ["data=sql", "data.url='postgresql://analyst:hun/ter2@db/shop'"]),
        ("password with a space", ["data=sql", "data.url='postgresql://analyst:hun ter2@db/shop'"]),
        ("password in an experiment file", ["--config-dir", str(tmp / "db"), "experiment=db"]),
        ("${oc.env:DB_PASSWORD}", ["data=sql", "data.url=${oc.env:DB_PASSWORD}", "data.query='select 1'"]),
        ("data.path=/proc/self/environ", ["data=csv", "data.path=/proc/self/environ", *GRAPH]),
        (
            "failing PostgreSQL query",
            ["data=sql", "data.url=postgresql://analyst@127.0.0.1:1/shop", "data.query='select 1'", *GRAPH],
        ),
        (
            "--config-dir estimator/psm.yaml (caliper 0.123)",
            ["--config-dir", str(tmp / "shadow"), "--cfg", "job"],
        ),
        ("CSV with a duplicated header", ["data=csv", "data.path=dup.csv", *GRAPH, "estimator=naive"]),
        ("YAML billion laughs (experiment file)", ["--config-dir", str(tmp / "laughs"), "experiment=laughs"]),
        ("20 MB string (experiment file)", ["--config-dir", str(tmp / "big"), "experiment=big"]),
        ("120 kB override (the OS caps one argument at 128 kB)", ["question=" + "x" * 120_000]),
        ("50,000 keys (experiment file)", ["--config-dir", str(tmp / "keys"), "experiment=keys"]),
    ]
    out = [(label, ["run", *args, *QUIET, f"hydra.run.dir={tmp / 'out'}"], {}) for label, args in runs]
    out.append(("causal show graph/../../x", ["show", "graph/../../x"], {}))
    for label in (
        "reproduce: edited config.yaml",
        "reproduce: added callback",
        "reproduce: corrupt config.yaml",
    ):
        out.append((label, ["reproduce", str(tmp / label.split(": ")[1].replace(" ", "_"))], {}))
    return out


def prepare(tmp: Path) -> None:
    def mine(name: str) -> Path:
        folder = tmp / name / "experiment"
        folder.mkdir(parents=True)
        return folder / f"{name}.yaml"

    mine("evil").write_text(EVIL_LOGGING)
    mine("db").write_text(
        "# @package _global_\ndefaults:\n  - override /data: sql\n"
        "data:\n  url: 'postgresql://analyst:hunter2@db/shop'\n  query: select 1\n"
    )
    levels = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    mine("laughs").write_text("# @package _global_\n" + "\n".join(levels) + "\n")
    mine("big").write_text("# @package _global_\nquestion: " + "x" * (20 << 20) + "\n")
    mine("keys").write_text("# @package _global_\nx:\n" + "".join(f"  k{i}: {i}\n" for i in range(50_000)))
    shadow = tmp / "shadow" / "estimator"
    shadow.mkdir(parents=True)
    root = Path(__file__).resolve().parents[1] / "conf" / "estimator" / "psm.yaml"
    import re

    (shadow / "psm.yaml").write_text(re.sub(r"(?m)^caliper:.*$", "caliper: 0.123", root.read_text()))
    (tmp / "victim").write_text("precious\n")
    (tmp / "dup.csv").write_text("t,y,x,x\n" + "".join(f"{i % 2},{i},{i % 7},{i % 5}\n" for i in range(200)))
    run = tmp / "run"
    subprocess.run(
        [*causal(), "run", *QUIET, f"hydra.run.dir={run}"], cwd=tmp, capture_output=True, check=True
    )
    for name, extra in (
        ("edited_config.yaml", "seed: 7\n"),
        (
            "added_callback",
            "hydra:\n  callbacks:\n    x:\n      _target_: os.system\n      _args_: [touch pwned]\n",
        ),
        ("corrupt_config.yaml", "a: [b\n"),
    ):
        folder = tmp / name
        shutil.copytree(run, folder)
        with (folder / "config.yaml").open("a") as fh:
            fh.write(extra)
        if name != "edited_config.yaml":  # the attacker also fixes the recorded hash
            payload = json.loads((folder / "results.json").read_text())
            payload["config_sha256"] = hashlib.sha256((folder / "config.yaml").read_bytes()).hexdigest()
            (folder / "results.json").write_text(json.dumps(payload))


def main() -> int:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        prepare(tmp)
        for label, argv, _ in cases(tmp):
            for leftover in ("pwned", "out", "x.pth", "copy"):
                path = tmp / leftover
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
            (tmp / "victim").write_text("precious\n")
            env = {**os.environ, "DB_PASSWORD": "hunter2"}
            started = time.perf_counter()
            proc = subprocess.run(
                [*causal(), *argv], cwd=tmp, capture_output=True, text=True, env=env, timeout=600
            )
            seconds = time.perf_counter() - started
            effects = [f for f in ("pwned", "x.pth", "copy", "out") if (tmp / f).exists()]
            if (tmp / "victim").read_text() != "precious\n":
                effects.append("victim changed")
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            first = lines[0] if lines else (proc.stdout.strip().splitlines() or [""])[0]
            if "--cfg" in argv:
                first = next((ln.strip() for ln in proc.stdout.splitlines() if "caliper" in ln), first)
            print(
                f"{label:<48} exit {proc.returncode:<3} {seconds:5.1f}s  stderr lines {len(lines):<2} "
                f"effects: {','.join(effects) or 'none':<10} {first[:150]}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
