"""The heterogeneity stage end to end: `causal run experiment=uplift_segments`, and off without modifiers."""

from __future__ import annotations

import csv
import json

from causal_cli import pipeline


def test_uplift_segments_prints_the_table_and_writes_pictures_and_cate_csv(run_causal):
    proc, run_dir = run_causal("run", "experiment=uplift_segments", "dgp.n=1500")
    assert proc.returncode == 0, proc.stderr
    assert "Who benefits" in proc.stdout and "account_age" in proc.stdout
    for name in ("segments.png", "gates.png", "qini.png", "cate.csv"):
        assert (run_dir / name).is_file(), name
    block = json.loads((run_dir / "results.json").read_text())["heterogeneity"]
    assert block["modifiers"] == ["account_age", "activity"]
    assert block["truth"]["pehe"] < block["truth"]["true_cate_sd"]
    with open(run_dir / "cate.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1500 and {"cate", "dr_score", "true_effect", "activity"} <= set(rows[0])
    page = (run_dir / "report.html").read_text()
    assert 'id="heterogeneity"' in page and "segments.png" in page


def test_no_modifiers_no_stage_and_results_unchanged(compose_cfg):
    base = ["dgp.n=600", "refuters=[]", "estimator=regression"]
    off = pipeline.run(compose_cfg(base))
    on = pipeline.run(compose_cfg([*base, "graph.effect_modifiers=[activity]"]))
    assert off.heterogeneity is None and "heterogeneity" not in off.to_dict()
    assert on.heterogeneity is not None and on.to_dict()["heterogeneity"]["modifiers"] == ["activity"]
    assert on.estimate == off.estimate, "declaring a modifier adds a stage; it does not move the ATE"
    forced_off = pipeline.run(compose_cfg([*base, "graph.effect_modifiers=[activity]", "cate.enabled=false"]))
    assert forced_off.heterogeneity is None
