"""Bad data is refused by the real ``causal`` command: one line naming the column/path, exit 1, status failed."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from causal_cli.data.checks import binary_treatment
from causal_cli.data.expr import evaluate, names_in
from causal_cli.errors import ConfigError, DataError
from tests.conftest import read_results

N = 300
GRAPH = ["graph=custom", "graph.treatment=t", "graph.outcome=y", "graph.confounders=[x1,x2]"]
#: failing runs stop at the data stage; naive + no refuters keeps the successful ones fast
QUICK = ["estimator=naive", "refuters=[]", "report.console=false", "report.enabled=false"]


def good_frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=N), rng.normal(size=N)
    t = (rng.random(N) < 1 / (1 + np.exp(-x1))).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "t": t, "y": 2 * t + x1 + x2 + rng.normal(size=N)})


def write_csv(path, frame: pd.DataFrame) -> str:
    frame.to_csv(path, index=False)
    return path.name


def _with(frame, **columns):
    out = frame.copy()
    for name, values in columns.items():
        out[name] = values
    return out


def case_not_found(tmp):
    return "nope.csv", [], r"data error: data\.path=\S+/nope\.csv does not exist"


def case_directory(tmp):
    (tmp / "adir").mkdir()
    return "adir", [], r"data error: data\.path=\S+/adir is not a file"


def case_empty_file(tmp):
    (tmp / "empty.csv").write_text("")
    return "empty.csv", [], r"data error: data\.path=\S+/empty\.csv is empty \(no header, no rows\)"


def case_header_only(tmp):
    (tmp / "header.csv").write_text("x1,x2,t,y\n")
    return "header.csv", [], r"data error: data\.path=\S+/header\.csv has no rows \(only a header\)"


def case_undecodable(tmp):
    (tmp / "latin.csv").write_bytes(b"x1,x2,t,y\n\xff\xfe\xfa,1,0,1\n")
    return (
        "latin.csv",
        [],
        r"data error: data\.path=\S+/latin\.csv could not be read as CSV \(sep=','\): .*codec",
    )


def case_garbage_parquet(tmp):
    (tmp / "bad.parquet").write_text("this is not parquet\n")
    return (
        "bad.parquet",
        ["data=parquet"],
        r"data error: data\.path=\S+/bad\.parquet could not be read as Parquet: ",
    )


def case_missing_column(tmp):
    frame = good_frame().rename(columns={"x2": "x_2"})
    return (
        write_csv(tmp / "renamed.csv", frame),
        [],
        r"data error: column 'x2' \(graph confounder\) is not in data\.path=\S+/renamed\.csv; close matches: x_2$",
    )


def case_not_binary(tmp):
    frame = _with(good_frame(), t=np.arange(N) % 3)
    return (
        write_csv(tmp / "three.csv", frame),
        [],
        r"data error: treatment 't' is not binary: distinct values 0, 1, 2; expected 0/1, true/false or yes/no$",
    )


def case_only_treated(tmp):
    frame = _with(good_frame(), t=1)
    return (
        write_csv(tmp / "treated.csv", frame),
        [],
        rf"data error: treatment 't' is 1 in every row \({N} rows\)",
    )


def case_only_control_after_query(tmp):
    return (
        write_csv(tmp / "good.csv", good_frame()),
        ["data.query='t == 0'"],
        r"data error: treatment 't' is 0 in every row \(\d+ rows\): an effect needs both treated and control",
    )


def case_missing_values(tmp):
    frame = good_frame()
    frame.loc[:4, "x1"] = np.nan
    frame.loc[10:11, "y"] = np.nan
    return (
        write_csv(tmp / "holes.csv", frame),
        [],
        rf"data error: missing values in used columns of data\.path=\S+/holes\.csv: x1 5, y 2 \(of {N} rows\); "
        r".*data\.missing=drop$",
    )


def case_non_numeric(tmp):
    frame = good_frame().astype({"x1": object})
    frame.loc[3, "x1"] = "abc"
    frame.loc[7, "x1"] = "12kg"
    return (
        write_csv(tmp / "text.csv", frame),
        [],
        r"data error: column 'x1' \(graph confounder\) is not numeric: 2 value\(s\) are not numbers "
        r"\(e\.g\. 'abc', '12kg'\); expected numbers, or list it in data\.categorical",
    )


def case_constant(tmp):
    frame = _with(good_frame(), x2=3)
    return (
        write_csv(tmp / "constant.csv", frame),
        [],
        r"data error: column 'x2' \(graph confounder\) is constant \(every row is 3\)",
    )


def case_unsafe_query(tmp):
    return (
        write_csv(tmp / "good.csv", good_frame()),
        ["data.query=\"__import__('os').system('touch pwned')\""],
        r"config error: data\.query=.*: attribute access \(\.system\) is not allowed; allowed: column names",
    )


def case_unsafe_derive(tmp):
    return (
        write_csv(tmp / "good.csv", good_frame()),
        ["+data.derive.z=\"__import__('os')\""],
        r"config error: data\.derive\.z=.*: the function '__import__' is not allowed; allowed: ",
    )


def case_bad_categorical(tmp):
    return (
        write_csv(tmp / "good.csv", good_frame()),
        ["data.categorical=[y]"],
        r"config error: data\.categorical: 'y' is not a confounder \(or other covariate\) of the graph; allowed: x1, x2",
    )


CASES = [
    case_not_found,
    case_directory,
    case_empty_file,
    case_header_only,
    case_undecodable,
    case_garbage_parquet,
    case_missing_column,
    case_not_binary,
    case_only_treated,
    case_only_control_after_query,
    case_missing_values,
    case_non_numeric,
    case_constant,
    case_unsafe_query,
    case_unsafe_derive,
    case_bad_categorical,
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__[5:])
def test_bad_data_is_refused_in_one_line(run_causal, tmp_path, case):
    path, extra, pattern = case(tmp_path)
    proc, run_dir = run_causal("run", "data=csv", f"data.path={path}", *GRAPH, *QUICK, *extra)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert re.search(pattern, lines[0]), lines[0]
    result = read_results(run_dir)
    assert lines[0].startswith("causal: ")  # every printed error line has the command's prefix
    assert result["status"] == "failed" and result["error"] == lines[0].removeprefix("causal: ")
    for name in ("results.csv", "summary.md", "report.html"):
        assert not (run_dir / name).exists(), name
    assert not (tmp_path / "pwned").exists()


def test_no_overlap_is_an_error_for_an_adjusting_estimator(run_causal, tmp_path):
    frame = _with(good_frame(), t=(good_frame()["x1"] > 0).astype(int))
    path = write_csv(tmp_path / "separated.csv", frame)
    one_confounder = ["graph=custom", "graph.treatment=t", "graph.outcome=y", "graph.confounders=[x1]"]
    proc, run_dir = run_causal(
        "run",
        "data=csv",
        f"data.path={path}",
        *one_confounder,
        "estimator=psm",
        "refuters=[]",
        "report.console=false",
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = proc.stderr.strip()
    assert re.fullmatch(
        r"causal: data error: no overlap: the propensity scores of treated units \[\S+, \S+\] and control units "
        r"\[\S+, \S+\] do not intersect, .*",
        line,
    ), line
    assert read_results(run_dir)["status"] == "failed"


def test_missing_drop_reports_rows_dropped(run_causal, tmp_path):
    frame = good_frame()
    frame.loc[:4, "x1"] = np.nan
    frame.loc[10:11, "y"] = np.nan
    path = write_csv(tmp_path / "holes.csv", frame)
    proc, run_dir = run_causal("run", "data=csv", f"data.path={path}", "data.missing=drop", *GRAPH, *QUICK)
    assert proc.returncode == 0, proc.stderr
    result = read_results(run_dir)
    assert result["n_rows"] == N - 7
    assert f"data.missing=drop: dropped 7 of {N:,} rows with missing values (x1 5, y 2)" in result["notes"]


def test_password_in_url_is_refused_before_anything_is_written(run_causal, tmp_path):
    proc, run_dir = run_causal(
        "run",
        "data=sql",
        "data.url=postgresql://bob:hunter2@db.internal/shop",
        "data.query='select 1'",
        *GRAPH,
    )
    assert proc.returncode == 2
    assert "an override holds a URL with a password" in proc.stderr and "hunter2" not in proc.stderr
    assert not run_dir.exists()


@pytest.mark.parametrize(
    "expression, message",
    [
        ("__import__('os')", "the function '__import__' is not allowed"),
        ("x1.real", r"attribute access \(\.real\) is not allowed"),
        ("x1.__class__ == 1", r"attribute access \(\.__class__\) is not allowed"),
        ("x1[0]", r"indexing \(\[\.\.\.\]\) is not allowed"),
        ("(lambda: 1)()", "is not allowed"),
        ("[c for c in x1]", "'ListComp' is not allowed"),
        ("x1 if x2 else 0", "'IfExp' is not allowed"),
        ("open('f')", "the function 'open' is not allowed"),
        ("log(x1, 2)", "other than one argument"),
        ("x1 +", "is not a valid expression"),
        ("x11 > 0", "unknown column 'x11'; close matches: x1"),
    ],
)
def test_expressions_outside_the_allow_list_are_refused(expression, message):
    with pytest.raises(ConfigError, match=message):
        evaluate(expression, good_frame(), "data.query")


def test_allowed_expressions_evaluate_like_pandas():
    frame = good_frame().assign(
        age=np.arange(N, dtype=np.int8) % 60, state=np.where(np.arange(N) % 2, "CA", "NY")
    )
    assert (evaluate("age ** 3", frame, "k") == frame["age"].astype(np.int64) ** 3).all()  # no int8 overflow
    keep = evaluate("0 < x1 <= 1 and state in ['CA'] or not t == 1", frame, "k")
    assert keep.equals((frame.x1 > 0) & (frame.x1 <= 1) & frame.state.isin(["CA"]) | ~(frame.t == 1))
    assert np.allclose(
        evaluate("log1p(abs(x1)) * -2 // 1 % 3", frame, "k"), np.log1p(abs(frame.x1)) * -2 // 1 % 3
    )
    assert names_in("sqrt(abs(x1)) + x2 * age", "k") == {"x1", "x2", "age"}


@pytest.mark.parametrize(
    "values, coded, note",
    [
        (["yes", "No", "YES"], [1, 0, 1], "treatment 't': 'YES' -> 1, 'yes' -> 1, 'No' -> 0"),
        ([True, False, True], [1, 0, 1], "treatment 't': true -> 1, false -> 0"),
        ([1.0, 0.0, 1.0], [1, 0, 1], None),
    ],
)
def test_binary_treatment_mapping_is_stated(values, coded, note):
    notes = []
    assert binary_treatment(pd.Series(values), "t", notes).tolist() == coded
    assert notes == ([note] if note else [])


def test_text_treatment_that_is_not_yes_no_is_refused_with_its_values():
    with pytest.raises(
        DataError, match="distinct values 'control', 'treated'; expected 0/1, true/false or yes/no"
    ):
        binary_treatment(pd.Series(["treated", "control"] * 5), "t", [])
