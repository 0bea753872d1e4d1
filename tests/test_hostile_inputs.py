"""THE hostile-input suite (issue #17): every reproducer of the review plus generated hostile inputs.

Over 700 inputs: the review's reproducers (faults, bounds, silent wrong results, internal errors, and
the allow-list/secret/config-trust ones marked ``needs: secconf``), every config key
with wrong types, signs, huge/tiny values, NaN/inf, -0.0, unicode and path tricks, hostile ``derive`` /
``query`` expressions and hostile data files. Each ends as a clean one-line error, a correct success, or
a misbehaviour (code executed, traceback, hang, exit status vs results.json, a secret in the run folder,
a file written outside it). Two runner processes share the corpus in-process (tests/hostile_runner.py);
signals, concurrency and kill -9 are subprocess tests in tests/test_faults.py. The counts table is
printed at the end of the pytest output (tests/conftest.py, ``pytest_terminal_summary``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.hostile_cases import USER_CONF, corpus

REPO = Path(__file__).resolve().parents[1]
SHARDS = 2
SECRET = "hostile-secret-7f3a9c"
STUDY = "account_age,activity,feature_used,spend\n" + "".join(
    f"{1 + i % 7},{2 + (i * 37) % 11},{int(i % 3 == 0)},{5 + i % 13 + 3 * (i % 3 == 0)}\n" for i in range(240)
)


def make_sandbox(folder: Path) -> None:
    """The files inputs refer to: a data file, a victim no input may change, a user config folder."""
    folder.mkdir(parents=True)
    (folder / "study.csv").write_text(STUDY)
    (folder / "duplicated.csv").write_text(
        STUDY.replace("spend\n", "spend,spend\n", 1).replace("\n", ",1\n")[:-2] + "\n"
    )
    (folder / "victim").write_text("do not touch\n")
    (folder / "victim_dir").mkdir()
    (folder / "victim_dir" / "keep").write_text("keep\n")
    for rel, text in USER_CONF.items():
        path = folder / "userconf" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("{marker}", str(folder / "PWNED-userconf")))
    edited = folder / "edited_run"
    (edited / ".hydra").mkdir(parents=True)
    (edited / "results.json").write_text(json.dumps({"status": "ok", "seed": 0}))
    (edited / "config.yaml").write_text(
        "estimator:\n  name: ipw\n  propensity_model:\n    _target_: os.system\n"
        f"    command: touch {folder / 'PWNED-reproduce'}\n"
    )


def counts_table(cases: list[dict], records: dict[int, dict]) -> str:
    rows = Counter()
    for case in cases:
        rec = records[case["id"]]
        group = "issue #17: config trust" if case["needs"] else f"{case['origin']}: {case['layer']}"
        rows[(group, rec["outcome"])] += 1
    groups = sorted({g for g, _ in rows})
    lines = [
        f"{'inputs':<28} {'attempts':>8} {'clean errors':>12} {'successes':>10} {'misbehaviours':>13}",
    ]
    total = Counter()
    for group in groups:
        e, o, m = rows[(group, "error")], rows[(group, "ok")], rows[(group, "misbehaviour")]
        total.update(error=e, ok=o, misbehaviour=m)
        lines.append(f"{group:<28} {e + o + m:>8} {e:>12} {o:>10} {m:>13}")
    n = sum(total.values())
    lines.append(f"{'total':<28} {n:>8} {total['error']:>12} {total['ok']:>10} {total['misbehaviour']:>13}")
    return "\n".join(lines)


def run_shard(k: int, shard: list[dict], tmp_path: Path) -> dict[int, dict]:
    """One runner process over ``shard``; an input that kills it (``os._exit`` in a model spec, without
    the allow-list) is recorded as a misbehaviour and a new runner continues after it."""
    sandbox, runs = tmp_path / f"sandbox{k}", tmp_path / f"runs{k}"
    make_sandbox(sandbox)
    runs.mkdir()
    records: dict[int, dict] = {}
    attempt = 0
    while shard:
        corpus_file, results = (
            tmp_path / f"corpus{k}-{attempt}.json",
            tmp_path / f"results{k}-{attempt}.jsonl",
        )
        corpus_file.write_text(json.dumps(shard))
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.hostile_runner",
                str(corpus_file),
                str(results),
                str(sandbox),
                str(runs),
            ],
            cwd=sandbox,
            capture_output=True,
            text=True,
            timeout=1800,
            env={**os.environ, "COLUMNS": "80", "PYTHONPATH": str(REPO), "CAUSAL_HOSTILE_SECRET": SECRET},
        )
        done = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
        records.update((rec["id"], rec) for rec in done)
        shard = shard[len(done) :]
        if shard:  # the runner died on shard[0]
            reason = f"the process died (exit {proc.returncode}): {' '.join(proc.stderr.split())[-200:]}"
            records[shard[0]["id"]] = {"id": shard[0]["id"], "outcome": "misbehaviour", "reason": reason}
            shard = shard[1:]
        attempt += 1
    return records


def run_shards(cases: list[dict], tmp_path: Path) -> dict[int, dict]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(SHARDS) as pool:
        parts = pool.map(lambda k: run_shard(k, cases[k::SHARDS], tmp_path), range(SHARDS))
        return {i: rec for part in parts for i, rec in part.items()}


def test_hostile_inputs_end_in_clean_errors_or_correct_successes(tmp_path, record_property):
    cases = corpus()
    assert len(cases) >= 700
    records = run_shards(cases, tmp_path)
    assert set(records) == {c["id"] for c in cases}
    table = counts_table(cases, records)
    record_property("hostile_counts", table)
    Path(tmp_path / "counts.txt").write_text(table)
    bad = [
        f"{records[c['id']]['reason']}: {c['layer']} {json.dumps(c['payload'])[:240]}"
        for c in cases
        if records[c["id"]]["outcome"] == "misbehaviour"
    ]
    assert not bad, f"{len(bad)} misbehaviours:\n" + "\n".join(bad[:60]) + "\n" + table
    ok = sum(1 for c in cases if records[c["id"]]["outcome"] == "ok")
    assert ok >= 50  # the corpus also exercises real successes, not only errors
