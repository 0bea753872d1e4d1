"""The hostile-input corpus of tests/test_hostile_inputs.py (issue #17, "Security and faults").

Each case is a dict: ``id``, ``layer`` (how the runner feeds it: ``cli`` = ``causal_cli.cli.main(argv)``,
``config`` = one override on a composed config, then validation and, if valid, the pipeline;
``expr`` = a ``data.derive``/``data.query`` expression; ``datafile`` = a hostile CSV file run through the
pipeline), ``origin`` (``issue17`` for the reproducers of the review, ``generated`` for the rest) and
``needs`` (``secconf``: the allow-list, config-trust and secret reproducers, counted as their own row).

Placeholders filled by the runner: ``{sandbox}`` (the runner's working folder), ``{marker}`` (a file that
exists only if an input ran code), ``{victim}`` (a file no input may change), ``{run}`` (this input's
run folder), ``{secret}`` (a secret value in the environment that must never reach a run folder).
"""

from __future__ import annotations

import base64
import itertools

#: every config key the generated inputs set: (base overrides, key)
CONFIG_KEYS = [
    ([], "seed"),
    ([], "question"),
    ([], "reference"),
    ([], "reference_kind"),
    ([], "dgp.n"),
    ([], "dgp.seed"),
    ([], "dgp.true_effect"),
    ([], "dgp.noise_sd"),
    ([], "dgp.confounding"),
    ([], "graph.treatment"),
    ([], "graph.outcome"),
    ([], "graph.confounders"),
    ([], "graph.edges"),
    ([], "graph.outcome_units"),
    ([], "identification.backdoor_method"),
    ([], "diagnostics.num_bins"),
    ([], "diagnostics.top_weights"),
    ([], "diagnostics.overlap_low"),
    ([], "diagnostics.smd_threshold"),
    ([], "refuters.n_jobs"),
    ([], "estimator.k"),
    ([], "estimator.caliper"),
    ([], "estimator.propensity_C"),
    ([], "estimator.target_units"),
    ([], "estimator.ci.level"),
    ([], "estimator.ci.method"),
    ([], "estimator.ci.num_bootstrap"),
    (["estimator=ps_stratification"], "estimator.num_strata"),
    (["estimator=ps_stratification"], "estimator.max_strata"),
    (["estimator=distance_matching"], "estimator.max_rows"),
    (["estimator=aipw"], "estimator.folds"),
    (["estimator=aipw"], "estimator.clip"),
    (["estimator=ipw"], "estimator.trimming"),
    (["estimator=dml"], "estimator.folds"),
    (["refuters=[placebo]"], "refuters.placebo.num_simulations"),
    (["refuters=[placebo]"], "refuters.placebo.placebo_type"),
    (["refuters=[data_subset]"], "refuters.data_subset.subset_fraction"),
    (["refuters=[unobserved_common_cause]"], "refuters.unobserved_common_cause.curve_points"),
    (["refuters=[unobserved_common_cause]"], "refuters.unobserved_common_cause.strengths"),
    (["refuters=[bootstrap]"], "refuters.bootstrap.alpha"),
]
#: hostile values for every key: wrong types, signs, huge and tiny values, NaN/inf, -0.0, empty
#: strings, unicode, path tricks, interpolations (the override's right-hand side, Hydra syntax)
VALUES = [
    "-1",
    "0",
    "-0.0",
    "1e-9",
    "2",
    "1000000000000",
    "99999999999999999999999",
    "-1e308",
    "nan",
    "inf",
    "abc",
    "''",
    "[]",
    "{}",
    "null",
    "true",
    "[0.5,-1]",
    "'\u202eevil'",
    "'../../etc/passwd'",
]


def _config_cases() -> list[dict]:
    cases = []
    for (base, key), value in itertools.product(CONFIG_KEYS, VALUES):
        cases.append({"layer": "config", "payload": {"base": base, "overrides": [f"{key}={value}"]}})
    return cases


#: derive/query expressions over a frame with int, float, text and boolean columns
EXPRESSIONS = [
    "age * 2",
    "age ** 2 + log1p(spend)",
    "spend / 0",
    "1 / 0",
    "1 // 0",
    "1 % 0",
    "age / (age - age)",
    "'a' * 3000000000",
    "3000000000 * 'a'",
    "name * 100000",
    "name * 5",
    "name + name",
    "'x' * 10 ** 12",
    "'a' * 10 ** 64",
    "9 ** 9 ** 9",
    "2 ** 1000000",
    "10.0 ** 400",
    "1e308 * 1e308",
    "age ** -1",
    "age ** 65",
    "-age ** 0.5",
    "sqrt(-1)",
    "log(0)",
    "exp(1000)",
    "abs(name)",
    "isnull(spend)",
    "notnull(flag)",
    "flag & (age > 3)",
    "~flag",
    "not flag",
    "age in [1, 2, 3]",
    "age in age",
    "name in ['a', 'b']",
    "age > 'x'",
    "'a' - 1",
    "name - 1",
    "age + name",
    "age < spend < 10",
    "age == None",
    "None + 1",
    "True + True",
    "__import__('os').system('touch {marker}')",
    "open('{victim}', 'w')",
    "age.__class__",
    "age.__class__.__mro__[1].__subclasses__()",
    "().__class__.__bases__[0].__subclasses__()",
    "[x for x in (1,)]",
    "lambda: 1",
    "age[0]",
    "age if flag else spend",
    "globals()",
    "eval('1')",
    "exec('import os')",
    "getattr(age, 'sum')()",
    "@age",
    "`age`",
    "age;",
    "age = 1",
    "(age := 1)",
    "f'{age}'",
    "b'bytes'",
    "1j",
    "...",
    "{1: 2}",
    "{1, 2}",
    "*age",
    "age if",
    "(" * 200 + "age" + ")" * 200,
    "(" * 5000 + "age" + ")" * 5000,
    "-" * 10000 + "age",
    "9" * 5000,
    "'" + "x" * 20_000 + "'",
    "age + " * 3000 + "age",
    "age\x00",
    "age\u202e",
    "ａｇｅ",
    "",
    " ",
    "\\",
    "#",
    "age > 1e309",
    "spend > nan",
]


def _expr_cases() -> list[dict]:
    cases = []
    for expression in EXPRESSIONS:
        for kind in ("derive", "query"):
            cases.append({"layer": "expr", "payload": {"expression": expression, "kind": kind}})
    return cases


HEADER = "account_age,activity,feature_used,spend"


def _rows(n: int = 240, fmt=None) -> str:
    fmt = fmt or (
        lambda i: f"{1 + i % 7},{2 + (i * 37) % 11},{int(i % 3 == 0)},{5 + i % 13 + 3 * (i % 3 == 0)}"
    )
    return "".join(fmt(i) + "\n" for i in range(n))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _datafile_cases() -> list[dict]:
    good = (HEADER + "\n" + _rows()).encode()
    files = {
        "valid": good,
        "formula_cells": (
            HEADER
            + "\n"
            + _rows(240, lambda i: f"{1 + i % 7},{2 + i % 11},{int(i % 3 == 0)},=cmd|' /C calc'!A0")
        ).encode(),
        "formula_column_name": (
            'account_age,activity,feature_used,spend,=HYPERLINK("x")\n'
            + _rows(240, lambda i: f"1,{i % 5},{i % 2},{i},1")
        ).encode(),
        "formula_in_used_column": (
            HEADER + "\n" + _rows(240, lambda i: f"=1+{i % 7},{2 + i % 11},{int(i % 3 == 0)},{5 + i % 13}")
        ).encode(),
        "huge_field": (HEADER + "\n" + "1,2,1," + "9" * 5_000_000 + "\n" + _rows()).encode(),
        "huge_text_field": (
            HEADER + ",note\n" + _rows(240, lambda i: f"1,{i % 5},{i % 2},{i}," + "x" * 20_000)
        ).encode(),
        "binary_junk": bytes(range(256)) * 64,
        "nul_bytes": good.replace(b",", b"\x00,", 50),
        "latin1": (HEADER + ",città\n" + _rows(240, lambda i: f"1,{i % 5},{i % 2},{i},é")).encode("latin-1"),
        "utf16": (HEADER + "\n" + _rows()).encode("utf-16"),
        "utf8_bom": b"\xef\xbb\xbf" + good,
        "nan_inf": (
            HEADER + "\n" + _rows(240, lambda i: f"{['nan', 'inf', '-inf', '1'][i % 4]},{i % 5},{i % 2},{i}")
        ).encode(),
        "nan_outcome": (
            HEADER + "\n" + _rows(240, lambda i: f"{1 + i % 7},{i % 5},{i % 2},{['nan', 'inf', '3'][i % 3]}")
        ).encode(),
        "duplicated_header": (
            "account_age,activity,feature_used,spend,spend\n"
            + _rows(240, lambda i: f"1,{i % 5},{i % 2},{i},{-i}")
        ).encode(),
        "duplicated_header_twice": (
            "spend,activity,feature_used,spend,account_age\n"
            + _rows(240, lambda i: f"1,{i % 5},{i % 2},{i},{i % 7}")
        ).encode(),
        "only_header": (HEADER + "\n").encode(),
        "empty": b"",
        "one_row": (HEADER + "\n1,2,1,3\n").encode(),
        "all_treated": (HEADER + "\n" + _rows(240, lambda i: f"{1 + i % 7},{i % 5},1,{i}")).encode(),
        "treatment_text": (
            HEADER + "\n" + _rows(240, lambda i: f"{1 + i % 7},{i % 5},{['yes', 'no'][i % 2]},{i}")
        ).encode(),
        "treatment_three_values": (
            HEADER + "\n" + _rows(240, lambda i: f"{1 + i % 7},{i % 5},{i % 3},{i}")
        ).encode(),
        "ragged_rows": (HEADER + "\n" + _rows(240, lambda i: ",".join(["1"] * (1 + i % 6)))).encode(),
        "quotes_unbalanced": (HEADER + '\n"1,2,1,3\n' + _rows()).encode(),
        "many_columns": (
            ",".join(f"c{i}" for i in range(5_000))
            + ","
            + HEADER
            + "\n"
            + _rows(50, lambda i: ",".join(["0"] * 5_000) + f",1,{i % 5},{i % 2},{i}")
        ).encode(),
        "crlf": good.replace(b"\n", b"\r\n"),
        "cr_only": good.replace(b"\n", b"\r"),
        "unicode_header": ("âccount_age,activity,feature_used,spend\n" + _rows()).encode(),
        "rtl_override_header": ("account_age\u202e,activity,feature_used,spend\n" + _rows()).encode(),
        "huge_numbers": (HEADER + "\n" + _rows(240, lambda i: f"1e308,{i % 5},{i % 2},{'9' * 400}")).encode(),
        "negative_zero": (HEADER + "\n" + _rows(240, lambda i: f"-0.0,{i % 5},{i % 2},-0.0")).encode(),
        "booleans_text": (
            HEADER + "\n" + _rows(240, lambda i: f"{1 + i % 7},{i % 5},{['true', 'false'][i % 2]},{i}")
        ).encode(),
        "sep_semicolon": good.replace(b",", b";"),
        "json_not_csv": b'{"account_age": [1, 2], "spend": [3, 4]}',
        "html_not_csv": b"<html><body><script>alert(1)</script></body></html>",
        "yaml_bomb_text": b'a: &a ["lol","lol"]\nb: &b [*a,*a,*a]\n',
        "long_line_no_newline": b"x" * 3_000_000,
    }
    cases = [
        {"layer": "datafile", "payload": {"name": name, "content": _b64(data), "overrides": []}}
        for name, data in files.items()
    ]
    for name, extra in (
        ("valid", ["data.encoding=rot13"]),
        ("valid", ["data.encoding=utf-32"]),
        ("valid", ["data.encoding=''"]),
        ("valid", ["data.sep=''"]),
        ("valid", ["data.sep='ab'"]),
        ("valid", ["data.sep='\\n'"]),
        ("valid", ["data.query='spend > 1e9'"]),
        ("valid", ["+data.derive.x='1/0'"]),
        ("valid", ["+data.derive.x='\"a\" * 3000000000'"]),
        ("latin1", ["data.encoding=latin-1"]),
        ("utf16", ["data.encoding=utf-16"]),
        ("sep_semicolon", ["data.sep=';'"]),
    ):
        cases.append(
            {"layer": "datafile", "payload": {"name": name, "content": _b64(files[name]), "overrides": extra}}
        )
    return cases


def _cli(argv, origin="issue17", needs=None, expect=None, run_dir=None, plant=None, fast=True) -> dict:
    payload = {"argv": list(argv), "fast": fast}
    if run_dir:
        payload["run_dir"] = run_dir
    if plant:
        payload["plant"] = plant
    if expect:
        payload["expect"] = expect
    return {"layer": "cli", "origin": origin, "needs": needs, "payload": payload}


#: the reproducers of issue #17, as command lines (plus the secconf ones, marked)
def _issue17_cases() -> list[dict]:
    run = ["run"]
    secconf = "secconf"
    cases = [
        # concurrency and filesystem (the concurrent case itself is a subprocess test in test_faults.py)
        _cli([*run, "hydra.output_subdir=../A/.hydra"], expect="error"),
        _cli([*run, "hydra.output_subdir=/tmp"], expect="error"),
        _cli([*run, "hydra.output_subdir={sandbox}/escape"], expect="error"),
        _cli([*run, "hydra.output_subdir=.."], expect="error"),
        _cli([*run, "hydra.output_subdir=a/../../b"], expect="error"),
        _cli(run, plant=[[".hydra/config.yaml", "victim"]]),
        _cli(run, plant=[[".hydra/hydra.yaml", "victim"], [".hydra/overrides.yaml", "victim"]]),
        _cli(run, plant=[[".hydra", "victim_dir"]], expect="error"),
        _cli(run, plant=[["results.json", "victim"]], expect="error"),
        _cli(run, plant=[["config.yaml", "victim"], ["results.csv", "victim"], ["summary.md", "victim"]]),
        # unbounded inputs
        _cli(
            [
                *run,
                "refuters=[unobserved_common_cause]",
                "refuters.unobserved_common_cause.strengths=[" + ",".join(["0.1"] * 3000) + "]",
            ],
            expect="error",
        ),
        _cli(
            [
                *run,
                "refuters=[unobserved_common_cause]",
                "refuters.unobserved_common_cause.curve_points=1000000000",
            ],
            expect="error",
        ),
        _cli([*run, "diagnostics.num_bins=1000000000"], expect="error"),
        _cli([*run, "estimator=ps_stratification", "estimator.num_strata=1000000000000"], expect="error"),
        _cli(
            [*run, "data=csv", "data.path={sandbox}/study.csv", "+data.derive.x='\"a\" * 3000000000'"],
            expect="error",
        ),
        _cli([*run, "refuters=[placebo]", "refuters.placebo.num_simulations=1000000000"], expect="error"),
        _cli(
            [*run, "estimator.ci.method=bootstrap", "estimator.ci.num_bootstrap=1000000000"], expect="error"
        ),
        _cli([*run, "estimator=distance_matching", "estimator.max_rows=100000000000"], expect="error"),
        _cli([*run, "dgp.n=1000000000"], expect="error"),
        _cli([*run, "diagnostics.top_weights=1000000000"], expect="error"),
        _cli([*run, "estimator=aipw", "estimator.folds=1000000000"], expect="error"),
        _cli([*run, "estimator=aipw", "estimator.n_rep=1000000000"], expect="error"),
        _cli([*run, "estimator=dml", "estimator.n_rep=1000000000"], expect="error"),
        # wrong results reported as ok
        _cli([*run, "dgp.n=300", "estimator.k=2000"], expect="error"),
        _cli([*run, "dgp.n=300", "estimator.k=250"], expect="error"),
        _cli([*run, "dgp.n=300", "estimator=distance_matching", "estimator.k=999"], expect="error"),
        _cli([*run, "refuters=[data_subset]", "refuters.data_subset.subset_fraction=1e-9"], expect="error"),
        _cli([*run, "refuters=[data_subset]", "refuters.data_subset.subset_fraction=0.01"], expect="error"),
        # "internal error" inputs
        _cli([*run, "dgp.noise_sd=-0.0"], expect="error"),
        _cli([*run, "dgp.true_effect=inf"], expect="error"),
        _cli([*run, "dgp.true_effect=nan"], expect="error"),
        _cli([*run, "dgp.noise_sd=inf"], expect="error"),
        _cli([*run, "data=csv", "data.path={sandbox}/study.csv", "data.encoding=rot13"], expect="error"),
        _cli([*run, "data=csv", "data.path={sandbox}/study.csv", "+data.derive.x='1/0'"], expect="error"),
        _cli([*run, "data=csv", "data.path={sandbox}/study.csv", "+data.derive.x='1 % 0'"], expect="error"),
        _cli(
            [*run, "data=csv", "data.path={sandbox}/study.csv", "data.query='spend - \"a\"'"], expect="error"
        ),
        _cli([*run, "estimator=ipw", "estimator.propensity_model=7"], expect="error", needs=secconf),
        _cli([*run, "estimator=ipw", "estimator.propensity_model='LogisticRegression'"], needs=secconf),
        _cli([*run, "estimator=ipw", "estimator.propensity_model=[1,2]"], expect="error", needs=secconf),
        _cli([*run, "estimator=aipw", "estimator.outcome_model={}"], needs=secconf),
        _cli([*run, "estimator=aipw", "estimator.outcome_model={a: 1}"], expect="error", needs=secconf),
        _cli([*run, "estimator=aipw", "estimator.clip=[0.9,0.1]"], expect="error"),
        _cli([*run, "estimator=ipw", "estimator.trimming=nope"], expect="error"),
        _cli([*run, "dgp.n=-3"], expect="error"),
        _cli([*run, "--nope"], expect="error"),
        _cli(["nope"], expect="error"),
        _cli(["show", "estimator/nope"], expect="error"),
        _cli(["summarize", "{sandbox}/no_such"], expect="error"),
        _cli(["report", "{sandbox}/no_such"], expect="error"),
        _cli(["reproduce", "{sandbox}/no_such"], expect="error"),
        # the allow-list, config-trust and secret reproducers of issue #17
        *[
            _cli(
                [*run, "estimator=ipw", f"+estimator.propensity_model={spec}"], needs=secconf, expect="error"
            )
            for spec in (
                "{_target_: sympy.sympify, a: \"__import__('os').system('touch {marker}')\"}",
                "{_target_: builtins.open, file: '{marker}', mode: w}",
                "{_target_: pathlib.Path.write_text, self: '{marker}', data: x}",
                "{_target_: shutil.copyfile, src: /etc/hostname, dst: '{marker}'}",
                "{_target_: os._exit, status: 0}",
                "{_target_: patsy.dmatrix, formula_like: \"I(__import__('os').system('touch {marker}'))\"}",
                "{_target_: os.system, command: 'touch {marker}'}",
                "{_target_: subprocess.run, args: [touch, '{marker}']}",
            )
        ],
        _cli(
            [*run, "+compare.ipw={propensity_model: {_target_: builtins.open, file: '{marker}', mode: w}}"],
            needs=secconf,
            expect="error",
        ),
        _cli(
            [*run, "+hydra.callbacks.evil={_target_: builtins.open, file: '{marker}', mode: w}"],
            needs=secconf,
            expect="error",
        ),
        _cli(
            [
                *run,
                "hydra.job.env_set.EVIL=1",
                "+hydra.callbacks.x={_target_: os.system, command: 'touch {marker}'}",
            ],
            needs=secconf,
            expect="error",
        ),
        _cli(
            [*run, "--config-dir={sandbox}/userconf", "+experiment=logging_handler"],
            needs=secconf,
            expect="error",
        ),
        _cli(
            [*run, "--config-dir={sandbox}/userconf", "+experiment=billion_laughs"],
            needs=secconf,
            expect="error",
        ),
        _cli(
            [*run, "--config-dir={sandbox}/userconf", "+experiment=many_keys"], needs=secconf, expect="error"
        ),
        _cli([*run, "--config-dir={sandbox}/userconf", "estimator=psm"], needs=secconf),
        _cli([*run, "question='" + "x" * 20_000_000 + "'"], needs=secconf, expect="error"),
        _cli(
            [*run, "data=sql", "data.url=postgresql://bob:hunter2@db.internal/shop", "data.query='select 1'"],
            needs=secconf,
            expect="error",
        ),
        _cli(
            [
                *run,
                "data=sql",
                "data.url='postgresql://bob:hunter2@db.internal/shop?sslmode=require'",
                "data.query='select 1'",
            ],
            needs=secconf,
            expect="error",
        ),
        _cli(
            [
                *run,
                "data=sql",
                "data.url='postgresql://db.internal/shop?password=hunter2'",
                "data.query='select 1'",
            ],
            needs=secconf,
            expect="error",
        ),
        _cli(
            [
                *run,
                "data=sql",
                "data.url='mysql+pymysql://root:hunter2@localhost/x'",
                "data.query='select 1'",
            ],
            needs=secconf,
            expect="error",
        ),
        _cli([*run, "question='${oc.env:CAUSAL_HOSTILE_SECRET}'"], needs=secconf),
        _cli([*run, "question='${oc.env:CAUSAL_HOSTILE_SECRET,x}'"], needs=secconf),
        _cli([*run, "data=csv", "data.path=/proc/self/environ"], needs=secconf, expect="error"),
        _cli([*run, "data=csv", "data.path=/dev/zero"], needs=secconf, expect="error"),
        _cli(["show", "graph/../../x"], needs=secconf, expect="error"),
        _cli(["show", "graph/../../../etc/passwd"], needs=secconf, expect="error"),
        _cli(["show", "/etc/passwd"], needs=secconf, expect="error"),
        _cli([*run, "data=csv", "data.path={sandbox}/duplicated.csv"], needs=secconf, expect="error"),
        _cli(["reproduce", "{sandbox}/edited_run"], needs=secconf, expect="error"),
    ]
    for case in cases:
        case.setdefault("origin", "issue17")
    return cases


def _generated_cli_cases() -> list[dict]:
    """A slice of the generated config inputs through the whole command (the rest go through the config layer)."""
    keys = ["dgp.n", "estimator.k", "graph.treatment"]
    values = ["-0.0", "nan", "'\u202e'", "'${oc.env:CAUSAL_HOSTILE_SECRET,x}'"]
    return [
        _cli(["run", f"{k}={v}"], origin="generated", needs="secconf" if "oc.env" in v else None)
        for k, v in itertools.product(keys, values)
    ]


def corpus() -> list[dict]:
    cases = [
        *_issue17_cases(),
        *_generated_cli_cases(),
        *_config_cases(),
        *_expr_cases(),
        *_datafile_cases(),
    ]
    for i, case in enumerate(cases):
        case["id"] = i
        case.setdefault("origin", "generated")
        case.setdefault("needs", None)
    return cases


#: user config folder of the secconf reproducers: a logging handler factory, YAML anchors, 50,000 keys
USER_CONF = {
    "experiment/logging_handler.yaml": (
        "# @package _global_\nhydra:\n  job_logging:\n    version: 1\n    handlers:\n      evil:\n"
        "        '()': os.system\n        command: 'touch {marker}'\n    root:\n      handlers: [evil]\n"
    ),
    "experiment/billion_laughs.yaml": (
        "# @package _global_\nlol: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        + "".join(f"l{i}: &a{i} [{', '.join(['*a' if i == 0 else f'*a{i - 1}'] * 10)}]\n" for i in range(8))
    ),
    "experiment/many_keys.yaml": "# @package _global_\n" + "".join(f"k{i}: {i}\n" for i in range(50_000)),
    "estimator/psm.yaml": "name: psm\nk: 1\n",
}
