"""The report's view model: every fact of a run record formatted once, for the console, Markdown and HTML.

:func:`build` takes the run record exactly as ``results.json`` holds it (``RunResult.to_dict()`` plus the
run's header and status), so a fresh run and a folder loaded from disk render the same. Renderers only lay
out these strings: none of them formats a number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from causal_cli.report import experiment as ab
from causal_cli.report.sensitivity import headline as sensitivity_headline
from causal_cli.report.sensitivity import refutation_closing
from causal_cli.report.sensitivity import rows as sensitivity_rows
from causal_cli.report.text import money

#: verdict -> (label, css/colour class)
VERDICTS = {True: ("pass", "pass"), False: ("FAIL", "fail"), None: ("info", "info")}


@dataclass(frozen=True)
class Sentence:
    """Text with emphasised spans: ``parts`` are (text, emphasised) pairs; each renderer marks emphasis its way."""

    parts: tuple[tuple[str, bool], ...]

    @property
    def plain(self) -> str:
        return "".join(text for text, _ in self.parts)

    @classmethod
    def of(cls, *parts: str | tuple[str, bool]) -> Sentence:
        return cls(tuple(p if isinstance(p, tuple) else (p, False) for p in parts))


def num(value, digits: int = 3) -> str:
    """A plain number: ``digits`` significant digits, thousands separated above 1,000."""
    if value is None or value == "":
        return "—"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number:.{digits}g}" if abs(number) < 1e3 else f"{number:,.0f}"


def pct(value, digits: int = 1) -> str:
    """A share as a percentage (0.123 -> ``12.3%``)."""
    return "—" if value is None else f"{100 * float(value):.{digits}f}%"


def p_value(value) -> str:
    return "—" if value is None else f"{value:.3g}"


def interval(low, high, units: str = "") -> str:
    return f"[{money(low, units)}, {money(high, units)}]"


# ---------------------------------------------------------------- headline


@dataclass
class EstimateRow:
    label: str
    estimate: str
    std_error: str = ""
    ci: str = ""
    reference: str = ""
    bias: str = ""
    main: bool = False
    #: a compared estimator that failed: its one-line error (the numbers are empty)
    error: str | None = None


@dataclass
class Headline:
    title: str
    treatment: str
    outcome: str
    estimator: str
    target_units: str
    n_rows: str
    identified_by: str
    identified_names: str
    level: int
    ci_label: str
    ci_method: str
    se_caption: str
    reference_label: str
    reference: str | None
    rows: list[EstimateRow]
    naive_sentence: Sentence | None
    coverage: Sentence | None
    caveats: list[str]


IDENTIFIED_BY = {
    "iv": ("instrumental variables:", "instruments"),
    "frontdoor": ("front-door adjustment through", "mediators"),
    "backdoor": ("backdoor adjustment for", "adjustment_set"),
}


def identification(r: dict[str, Any]) -> tuple[str, str]:
    how, key = IDENTIFIED_BY.get(r.get("identification"), ("no adjustment (the naive comparison)", None))
    if key is None:
        return how, ""
    names = ", ".join(r.get(key) or [])
    return how, names or ("nothing" if key == "adjustment_set" else "")


def all_caveats(r: dict[str, Any]) -> list[str]:
    """The main estimate's caveats, then each compared estimator's (prefixed with its name)."""
    lines = list(r.get("caveats") or [])
    for row in r.get("comparisons") or []:
        lines += [f"{row['estimator']}: {c}" for c in row.get("caveats") or []]
    return lines


def _estimate_rows(r: dict[str, Any], units: str) -> list[EstimateRow]:
    ref = money(r.get("reference"), units)
    rows = [
        EstimateRow(
            "naive (difference in means)",
            money(r["naive_estimate"], units),
            money(r.get("naive_std_error"), units),
            "",
            ref,
            money(r.get("naive_bias"), units),
        ),
        EstimateRow(
            f"causal: {r['estimator']} ({r['target_units'].upper()})",
            money(r["estimate"], units),
            money(r.get("std_error"), units),
            interval(r["ci_low"], r["ci_high"], units),
            ref,
            money(r.get("bias"), units),
            main=True,
        ),
    ]
    for c in r.get("comparisons") or []:
        label = f"{c['estimator']} ({c['target_units'].upper()})"
        if c.get("estimate") is None:
            rows.append(EstimateRow(label, "failed", error=c.get("error") or ""))
            continue
        rows.append(
            EstimateRow(
                label,
                money(c["estimate"], units),
                money(c.get("std_error"), units),
                interval(c["ci_low"], c["ci_high"], units),
                ref,
                money(c.get("bias"), units),
            )
        )
    return rows


def naive_sentence(r: dict[str, Any], units: str = "") -> Sentence | None:
    """How far the naive comparison is from the causal estimate, in words (None when undefined)."""
    share = r.get("naive_overstatement_pct")
    if share is None or r.get("estimator") == "naive":  # the naive estimate compared with itself
        return None
    naive, estimate = r["naive_estimate"], r["estimate"]
    pair = f"({money(naive, units)} vs {money(estimate, units)})"
    if naive * estimate < 0:
        return Sentence.of(
            f"The naive difference has the wrong sign {pair}: confounding reverses the apparent effect."
        )
    verb = "overstates" if abs(naive) > abs(estimate) else "understates"
    return Sentence.of(
        f"The naive difference {verb} the causal effect by ", (f"{abs(share):.1f}%", True), f" {pair}."
    )


def _coverage(r: dict[str, Any], units: str, level: int, label: str) -> Sentence | None:
    if r.get("reference") is None or r.get("ci_covers_reference") is None:
        return None
    verb = ("covers", False) if r["ci_covers_reference"] else ("does not cover", True)
    return Sentence.of(f"The {level}% CI ", verb, f" the {label} ({money(r['reference'], units)}).")


def headline(r: dict[str, Any]) -> Headline:
    units = units_of(r)
    level = int(round((r.get("ci_level") or 0.95) * 100))
    label = (r.get("reference_kind") or "reference").replace("_", " ")
    how, names = identification(r)
    se = r.get("se_method") or r.get("ci_method") or ""
    return Headline(
        title=f"Effect of {r['treatment']} on {r['outcome']}",
        treatment=r["treatment"],
        outcome=r["outcome"],
        estimator=r["estimator"],
        target_units=r["target_units"].upper(),
        n_rows=f"{r['n_rows']:,}",
        identified_by=how,
        identified_names=names,
        level=level,
        ci_label=f"{level}% CI",
        ci_method=r.get("ci_method") or "",
        se_caption=f"naive = difference in means, no adjustment; {level}% CI from the {se} SE",
        reference_label=label,
        reference=None if r.get("reference") is None else money(r["reference"], units),
        rows=_estimate_rows(r, units),
        naive_sentence=naive_sentence(r, units),
        coverage=_coverage(r, units, level, label),
        caveats=all_caveats(r),
    )


# ---------------------------------------------------------------- refutations


@dataclass
class RefutationRow:
    name: str
    new_effect: str
    sd: str
    p_value: str
    simulations: str
    verdict: str
    status: str
    rule: str
    reason: str


@dataclass
class GridRow:
    label: str
    #: (estimate, explained away?) per column
    cells: list[tuple[str, bool]]


@dataclass
class SensitivityGrid:
    """A sensitivity refuter's grid: re-estimated effect by the confounder's partial R² with T and Y."""

    title: str
    caption: str
    columns: list[str]
    rows: list[GridRow]
    explain_away: str


@dataclass
class Refutations:
    rows: list[RefutationRow]
    passed: int
    judged: int
    #: the closing sentence ("survived k of n"), None when no refuter gives a verdict
    closing: Sentence | None
    grids: list[SensitivityGrid]

    @property
    def all_passed(self) -> bool:
        return self.passed == self.judged


def _refutation_row(x: dict[str, Any], units: str) -> RefutationRow:
    label, status = VERDICTS[x.get("passed")]
    rule = x.get("rule") or (x.get("options") or {}).get("rule") or ""
    return RefutationRow(
        name=x["name"],
        new_effect=money(x.get("new_effect"), units),
        sd=num(x.get("new_effect_sd")),
        p_value=p_value(x.get("p_value")),
        simulations=str(x.get("num_simulations", "")),
        verdict=label,
        status=status,
        rule=str(rule),
        reason=x.get("reason") or "",
    )


def _grid(x: dict[str, Any], units: str) -> SensitivityGrid | None:
    rows = [row for row in x.get("table") or [] if "r2_treatment" in row and "r2_outcome" in row]
    if not rows:
        return None
    cols = sorted({row["r2_outcome"] for row in rows})
    grid = []
    for r2_t in sorted({row["r2_treatment"] for row in rows}):
        cells = {row["r2_outcome"]: row for row in rows if row["r2_treatment"] == r2_t}
        grid.append(
            GridRow(
                f"{r2_t:g}",
                [
                    (money(cells[c].get("new_effect"), units), bool(cells[c].get("explains_away")))
                    if c in cells
                    else ("", False)
                    for c in cols
                ],
            )
        )
    details = x.get("details") or {}
    rv, evalue = details.get("robustness_value"), details.get("e_value")
    line = "not reached on the curve" if rv is None else f"partial R² {rv:.3f} with both"
    return SensitivityGrid(
        title=f"Sensitivity ({x['name']}): estimate after adjusting for a confounder U",
        caption="rows: partial R² of U with the treatment; columns: with the outcome; red: explained away",
        columns=[f"{c:g}" for c in cols],
        rows=grid,
        explain_away=f"explained away by a confounder of strength: {line}"
        + (f"; E-value {evalue:.2f}" if evalue is not None else ""),
    )


def refutations(r: dict[str, Any]) -> Refutations | None:
    refs = r.get("refutations") or []
    if not refs:
        return None
    units = units_of(r)
    judged = [x for x in refs if x.get("passed") is not None]
    passed = sum(1 for x in judged if x["passed"])
    closing = None
    if judged:
        text = refutation_closing(passed, len(judged), r.get("sensitivity"))
        count = f"{passed} of {len(judged)}"
        before, _, after = text.partition(count)
        closing = Sentence.of(before, (count, True), after)
    grids = [g for g in (_grid(x, units) for x in refs) if g is not None]
    return Refutations([_refutation_row(x, units) for x in refs], passed, len(judged), closing, grids)


# ---------------------------------------------------------------- sensitivity


@dataclass
class Sensitivity:
    headline: str
    rows: list[tuple[str, str]]
    method: str


def sensitivity(r: dict[str, Any]) -> Sensitivity | None:
    block = r.get("sensitivity")
    text = sensitivity_headline(block)
    if not text:
        return None
    return Sensitivity(text, sensitivity_rows(block), block.get("method", ""))


# ---------------------------------------------------------------- diagnostics


@dataclass
class BalanceRow:
    covariate: str
    smd_before: str
    smd_after: str
    variance_ratio_before: str
    variance_ratio_after: str
    imbalanced_before: bool
    imbalanced_after: bool


@dataclass
class Balance:
    max_before: str
    #: "after matching" / "after weighting", None when the estimator does neither
    after_label: str | None
    max_after: str | None
    after_above_threshold: bool
    threshold: str
    n_imbalanced_after: int
    rows: list[BalanceRow]


@dataclass
class Overlap:
    warnings: list[str]
    summary: str
    bounds: str
    groups: list[list[str]]
    weights: list[list[str]]


@dataclass
class Diagnostics:
    balance: Balance | None
    overlap: Overlap | None


AFTER = {"matching": "after matching", "weighting": "after weighting"}


def _balance(diag: dict[str, Any]) -> Balance | None:
    if diag.get("max_abs_smd_before") is None:
        return None
    threshold = diag.get("smd_threshold", 0.1)
    after_label = AFTER.get(diag.get("adjustment"))
    after = diag.get("max_abs_smd_after") if after_label else None
    rows = [
        BalanceRow(
            b["covariate"],
            num(b.get("smd_before")),
            num(b.get("smd_after")),
            num(b.get("variance_ratio_before")),
            num(b.get("variance_ratio_after")),
            bool(b.get("imbalanced_before")),
            bool(b.get("imbalanced_after")),
        )
        for b in diag.get("balance") or []
    ]
    return Balance(
        max_before=num(diag["max_abs_smd_before"]),
        after_label=after_label,
        max_after=None if after is None else num(after),
        after_above_threshold=after is not None and after > threshold,
        threshold=f"{threshold:g}",
        n_imbalanced_after=int(diag.get("n_imbalanced_after") or 0),
        rows=rows,
    )


def _overlap_warnings(overlap: dict[str, Any]) -> list[str]:
    if not overlap.get("poor"):
        return []
    if overlap.get("estimand") in ("att", "atc"):
        return [f"{overlap['message']}; the estimate leans on extrapolation (see overlap.png)."]
    low, high = overlap["bounds"]
    by_group = ", ".join(f"{g} {pct(v['share_outside'])}" for g, v in (overlap.get("groups") or {}).items())
    lines = [
        f"poor overlap: {pct(overlap['share_outside'])} of units have a propensity score outside "
        f"[{low:g}, {high:g}] ({by_group}; warning above {pct(overlap.get('poor_share'))}); the estimate "
        "leans on extrapolation (see overlap.png)."
    ]
    k = overlap.get("weight_tail_index")
    if k is not None and k > 0.5:
        lines.append(
            f"the inverse-propensity weights are heavy-tailed (tail index {k:.2f} > 0.5: infinite variance), "
            "so weighting CIs under-cover."
        )
    return lines


def _overlap(diag: dict[str, Any]) -> Overlap | None:
    overlap = diag.get("overlap")
    if not overlap:
        return None
    low, high = overlap["bounds"]
    bounds = f"[{low:g}, {high:g}]"
    support = overlap.get("common_support")
    support_text = f"[{support[0]:.3f}, {support[1]:.3f}]" if support else "none (the groups do not overlap)"
    summary = (
        f"{pct(overlap['share_outside'])} of units lie outside {bounds}; common support {support_text}, "
        f"{pct(overlap.get('share_off_support'))} of units outside it. Scores from the "
        f"{overlap.get('propensity_source', 'estimator')}."
    )
    groups = [
        [
            str(group),
            f"{g['n']:,}",
            *(num(g[k]) for k in ("min", "p05", "median", "p95", "max")),
            pct(g["share_outside"]),
        ]
        for group, g in (overlap.get("groups") or {}).items()
    ]
    weights = [
        [
            str(group),
            f"{w['n']:,}",
            f"{w['n_used']:,}",
            f"{w['ess']:,.1f}",
            pct(w.get("ess_share")),
            ", ".join(f"{num(x['weight'])} ({pct(x['share'])})" for x in w.get("largest") or []),
        ]
        for group, w in (diag.get("weights") or {}).items()
    ]
    return Overlap(_overlap_warnings(overlap), summary, bounds, groups, weights)


def diagnostics(r: dict[str, Any]) -> Diagnostics:
    diag = r.get("diagnostics") or {}
    return Diagnostics(_balance(diag), _overlap(diag))


# ---------------------------------------------------------------- experiment and heterogeneity


@dataclass
class Experiment:
    title: str
    treatment: str
    design: str
    #: (flagged, sentence): the sample-ratio and pre-period balance checks
    checks: list[tuple[bool, str]]
    primary: str
    metric_header: list[str]
    #: (cells, significant after correction)
    metric_rows: list[tuple[list[str], bool]]
    metric_caption: str
    aa_header: list[str] = field(default_factory=list)
    aa_rows: list[list[str]] = field(default_factory=list)
    aa_caption: str = ""


def experiment(r: dict[str, Any]) -> Experiment | None:
    e = r.get("experiment")
    if not e:
        return None
    aa = bool(e.get("aa"))
    return Experiment(
        title=f"A/B test: {e['treatment']}",
        treatment=e["treatment"],
        design=ab.design_line(r),
        checks=[ab.srm_line(e), ab.balance_line(e)],
        primary=ab.primary_sentence(r),
        metric_header=list(ab.METRIC_HEADER),
        metric_rows=ab.metric_rows(e),
        metric_caption=ab.metric_caption(e),
        aa_header=list(ab.AA_HEADER) if aa else [],
        aa_rows=ab.aa_rows(e),
        aa_caption=ab.aa_caption(e) if aa else "",
    )


@dataclass
class SegmentRow:
    modifier: str
    segment: str
    n: str
    effect: str
    ci: str
    truth: str


@dataclass
class SegmentTest:
    """One modifier's segments and the test that their effects differ."""

    modifier: str
    rows: list[SegmentRow]
    p_value: str


@dataclass
class Heterogeneity:
    title: str
    meta: str
    has_truth: bool
    segments: list[SegmentTest]
    summary: list[str]
    policy_tree_title: str | None = None
    policy_tree: str | None = None


def heterogeneity(r: dict[str, Any]) -> Heterogeneity | None:
    from causal_cli.report.heterogeneity import summary_lines

    block = r.get("heterogeneity")
    if not block:
        return None
    units = units_of(r)
    segments = [
        SegmentTest(
            seg["modifier"],
            [
                SegmentRow(
                    seg["modifier"],
                    row["segment"],
                    f"{row['n']:,}",
                    money(row["effect"], units),
                    interval(row["ci_low"], row["ci_high"], units),
                    money(row.get("true_effect"), units),
                )
                for row in seg["segments"]
            ],
            p_value(seg["test"]["p_value"]),
        )
        for seg in block["segments"]
    ]
    tree = block.get("policy_tree")
    return Heterogeneity(
        title=f"Who benefits: effect by segment ({block['learner'].upper()}-learner CATE)",
        meta=f"modifiers {', '.join(block['modifiers'])}; {block['learner']}-learner with {block['model']}; "
        f"doubly robust scores, {block['settings']['folds']}-fold cross-fitting",
        has_truth=block.get("truth") is not None,
        segments=segments,
        summary=summary_lines(block, units),
        policy_tree_title=f"Policy tree (depth {tree['depth']})" if tree else None,
        policy_tree=tree["rules"] if tree else None,
    )


# ---------------------------------------------------------------- provenance and the whole run


@dataclass
class Provenance:
    estimator: str
    target_units: str
    n_rows: str
    seed: str
    status: str
    runtime: str | None
    started_at: str | None
    command: str | None
    data_description: str | None
    output_dir: str
    software: dict[str, str]


def software_versions(r: dict[str, Any]) -> dict[str, str]:
    """Versions recorded in the run's provenance (those of this installation for older folders)."""
    from causal_cli import provenance

    recorded = r.get("provenance") or provenance.collect([])
    versions = {"python": recorded.get("python"), **(recorded.get("packages") or {})}
    return {name: str(v) for name, v in versions.items() if v}


def provenance(r: dict[str, Any], software: bool = True) -> Provenance:
    runtime = r.get("runtime_s")
    n_rows = r.get("n_rows")
    return Provenance(
        estimator=str(r.get("estimator") or ""),
        target_units=str(r.get("target_units") or "").upper(),
        n_rows="—" if n_rows is None else f"{n_rows:,}",
        seed=str(r.get("seed")),
        status=str(r.get("status", "")),
        runtime=None if runtime is None else f"{runtime:.1f} s",
        started_at=str(r["started_at"]) if r.get("started_at") else None,
        command=str(r["command"]) if r.get("command") else None,
        data_description=r.get("data_description") or None,
        output_dir=str(r.get("output_dir") or "the run folder"),
        software=software_versions(r) if software else {},
    )


@dataclass
class RunView:
    """Everything a report shows about one run; sections a run does not have are None."""

    status: str
    error: str | None
    title: str
    units: str
    headline: Headline | None
    experiment: Experiment | None
    refutations: Refutations | None
    sensitivity: Sensitivity | None
    diagnostics: Diagnostics
    heterogeneity: Heterogeneity | None
    provenance: Provenance
    notes: list[str]
    report_html: str | None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def units_of(r: dict[str, Any]) -> str:
    return (r.get("graph") or {}).get("outcome_units", "") or ""


def _has_estimate(r: dict[str, Any]) -> bool:
    return not r.get("experiment") and all(
        r.get(k) is not None for k in ("treatment", "outcome", "estimate", "naive_estimate", "n_rows")
    )


def _title(r: dict[str, Any]) -> str:
    if r.get("treatment") and r.get("outcome"):
        return f"Effect of {r['treatment']} on {r['outcome']}"
    return f"causal-cli run ({r.get('status') or 'ok'})"


def build(r: dict[str, Any], software: bool = False) -> RunView:
    """The view of one run record (a ``results.json`` dict, also of a failed or interrupted run).

    ``software``: look up package versions (for the HTML page; an old folder without provenance
    gets those of this installation).
    """
    return RunView(
        status=str(r.get("status") or "ok"),
        error=r.get("error"),
        title=_title(r),
        units=units_of(r),
        headline=headline(r) if _has_estimate(r) else None,
        experiment=experiment(r),
        refutations=refutations(r),
        sensitivity=sensitivity(r),
        diagnostics=diagnostics(r),
        heterogeneity=heterogeneity(r),
        provenance=provenance(r, software),
        notes=list(r.get("notes") or []),
        report_html=r.get("report_html"),
    )
