"""``report.html``: one self-contained page per run (images base64-embedded, inline CSS, no links).

Everything comes from the run folder (``results.json``, the CSVs beside it, ``config.yaml``), so
``causal report RUN_DIR`` rebuilds the same page later. Module import is light: matplotlib is only
imported by the plotting step.
"""

from __future__ import annotations

import base64
import csv
import json
import time
from html import escape
from pathlib import Path
from typing import Any

from causal_cli.report.heterogeneity import IMAGES as HETEROGENEITY_IMAGES
from causal_cli.report.heterogeneity import html_section as heterogeneity_html
from causal_cli.report.sensitivity import headline, refutation_closing
from causal_cli.report.sensitivity import rows as sensitivity_rows
from causal_cli.report.text import money, naive_sentence

#: tables saved beside results.json that the pictures are redrawn from
TABLES = ("balance", "overlap", "refutation_simulations", "sensitivity")
IMAGES = {
    "graph.png": "Declared causal graph",
    "love_plot.png": "Covariate balance before and after adjustment",
    "overlap.png": "Propensity score distribution by group",
    "refutations.png": "Refuter simulations against the original estimate",
    "sensitivity.png": "Sensitivity to an unobserved common cause",
    **HETEROGENEITY_IMAGES,
}

CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #222;
       background: #f6f7f9; margin: 0; line-height: 1.45; }
main { max-width: 1080px; margin: 0 auto; padding: 24px 32px 48px; background: #fff; }
h1 { font-size: 1.7em; margin: 0.2em 0 0.1em; }
h2 { font-size: 1.25em; margin-top: 1.8em; padding-bottom: 4px; border-bottom: 2px solid #e3e6ea; }
h3 { font-size: 1.05em; margin: 1.2em 0 0.4em; }
.question { font-size: 1.15em; color: #333; margin: 0.3em 0 0.8em; }
.meta { color: #555; font-size: 0.9em; }
.meta code, td code { background: #f0f2f5; padding: 1px 4px; border-radius: 3px; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.92em; }
th, td { padding: 5px 10px; border-bottom: 1px solid #e3e6ea; text-align: left; vertical-align: top; }
th { background: #f0f2f5; font-weight: 600; }
td:first-child { white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.main td { font-weight: 600; background: #fff8e6; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 0.85em; font-weight: 600; }
.pass { background: #d9f2e1; color: #1b7837; } .fail { background: #fadbd8; color: #b2182b; }
.info { background: #e1ecf7; color: #205493; }
.flag { color: #b2182b; font-weight: 600; }
.warning { background: #fff4e5; border-left: 5px solid #e69f00; padding: 8px 14px; margin: 0.8em 0; }
.note { background: #f0f2f5; border-left: 5px solid #999; padding: 6px 14px; margin: 0.5em 0; }
.scroll { overflow-x: auto; max-width: 100%; }
figure { margin: 0.8em 0 1.2em; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e6ea; }
figcaption { color: #666; font-size: 0.85em; }
pre { background: #f6f8fa; border: 1px solid #e3e6ea; padding: 10px 14px; overflow-x: auto; font-size: 0.82em; }
.summary { font-size: 1.02em; }
.software { display: flex; flex-wrap: wrap; gap: 6px 10px; font-size: 0.9em; }
.software span { background: #f0f2f5; border-radius: 4px; padding: 2px 8px; }
footer { color: #888; font-size: 0.8em; margin-top: 2.5em; }
"""


def software_versions(result: dict[str, Any]) -> dict[str, str]:
    """Versions recorded in the run's provenance (those of this installation for older folders)."""
    from causal_cli import provenance

    recorded = result.get("provenance") or provenance.collect([])
    versions = {"python": recorded.get("python"), **(recorded.get("packages") or {})}
    return {name: v for name, v in versions.items() if v}


def load_tables(run_dir: Path) -> dict[str, list[dict[str, str]]]:
    tables = {}
    for name in TABLES:
        path = Path(run_dir) / f"{name}.csv"
        if path.is_file():
            with path.open(encoding="utf-8", newline="") as fh:
                tables[name] = list(csv.DictReader(fh))
    return tables


def render_run_dir(run_dir: Path, payload: dict[str, Any] | None = None) -> tuple[Path, list[str]]:
    """Draw the pictures and write ``report.html`` in ``run_dir``; returns its path and any problems."""
    from causal_cli.report import plots
    from causal_cli.report.files import atomic_write

    run_dir = Path(run_dir)
    if payload is None:
        payload = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    tables = load_tables(run_dir)
    written, problems = plots.render_all(run_dir, payload, tables)
    images = {name: (run_dir / name).read_bytes() for name in IMAGES if name in written}
    config_path = run_dir / "config.yaml"
    config_text = config_path.read_text(encoding="utf-8") if config_path.is_file() else ""
    page = render_html(payload, images, tables, config_text, problems)
    path = run_dir / "report.html"
    atomic_write(path, page)
    return path, problems


def _money(value, units: str) -> str:
    return escape(money(value, units))


def _num(value, digits: int = 3) -> str:
    if value is None or value == "":
        return "—"
    try:
        return f"{float(value):.{digits}g}" if abs(float(value)) < 1e3 else f"{float(value):,.0f}"
    except (TypeError, ValueError):
        return escape(str(value))


def _pct(value) -> str:
    return "—" if value is None else f"{100 * float(value):.1f}%"


def _badge(passed) -> str:
    cls, text = {True: ("pass", "pass"), False: ("fail", "FAIL"), None: ("info", "info")}[passed]
    return f'<span class="badge {cls}">{text}</span>'


def _table(header: list[str], rows: list[list[str]], numeric: set[int] = frozenset(), classes=None) -> str:
    head = "".join(
        f'<th class="num">{h}</th>' if i in numeric else f"<th>{h}</th>" for i, h in enumerate(header)
    )
    body = []
    for k, row in enumerate(rows):
        cls = f' class="{classes[k]}"' if classes and classes[k] else ""
        cells = "".join(
            f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _figure(images: dict[str, bytes], name: str) -> str:
    if name not in images:
        return ""
    data = base64.b64encode(images[name]).decode("ascii")
    caption = IMAGES[name]
    return (
        f'<figure><img alt="{escape(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{escape(caption)} ({name})</figcaption></figure>"
    )


def _question(config_text: str) -> str:
    import yaml

    try:
        return str((yaml.safe_load(config_text) or {}).get("question") or "")
    except yaml.YAMLError:
        return ""


def headline_section(r: dict[str, Any]) -> str:
    units = (r.get("graph") or {}).get("outcome_units", "")
    level = int(round((r.get("ci_level") or 0.95) * 100))
    ref, ref_kind = r.get("reference"), (r.get("reference_kind") or "reference").replace("_", " ")
    rows = [
        [
            "naive (difference in means)",
            _money(r["naive_estimate"], units),
            _money(r.get("naive_std_error"), units),
            "",
            _money(ref, units),
            _money(r.get("naive_bias"), units),
        ],
        [
            f"causal: {escape(r['estimator'])} ({r['target_units'].upper()})",
            _money(r["estimate"], units),
            _money(r.get("std_error"), units),
            f"[{_money(r['ci_low'], units)}, {_money(r['ci_high'], units)}]",
            _money(ref, units),
            _money(r.get("bias"), units),
        ],
    ]
    classes = ["", "main"]
    for c in r.get("comparisons") or []:
        label = f"{escape(c['estimator'])} ({c['target_units'].upper()})"
        if c.get("estimate") is None:
            rows.append([label, '<span class="flag">failed</span>', "", escape(c.get("error") or ""), "", ""])
        else:
            rows.append(
                [
                    label,
                    _money(c["estimate"], units),
                    _money(c.get("std_error"), units),
                    f"[{_money(c['ci_low'], units)}, {_money(c['ci_high'], units)}]",
                    _money(ref, units),
                    _money(c.get("bias"), units),
                ]
            )
        classes.append("")
    out = [
        "<h2>Headline</h2>",
        _table(
            [
                "",
                "estimate",
                "std. error",
                f"{level}% CI ({escape(r.get('ci_method') or '')})",
                escape(ref_kind),
                "bias",
            ],
            rows,
            {1, 2, 3, 4, 5},
            classes,
        ),
    ]
    sentences = []
    sentence = naive_sentence(r, units, emphasis=lambda text: f"<b>{text}</b>")
    if sentence:
        sentences.append(escape(sentence).replace("&lt;b&gt;", "<b>").replace("&lt;/b&gt;", "</b>"))
    if ref is not None and r.get("ci_covers_reference") is not None:
        covers = "covers" if r["ci_covers_reference"] else "<b>does not cover</b>"
        sentences.append(f"The {level}% CI {covers} the {escape(ref_kind)} ({_money(ref, units)}).")
    caveats = list(r.get("caveats") or []) + [
        f"{c['estimator']}: {line}" for c in r.get("comparisons") or [] for line in c.get("caveats") or []
    ]
    if caveats:
        out.append('<h3 class="caveats">Caveats</h3>')
        out += [f'<div class="warning caveat">{escape(line)}</div>' for line in caveats]
    if sentences:
        out.append(f'<p class="summary">{" ".join(sentences)}</p>')
    return "\n".join(out)


def _experiment_section(r: dict[str, Any]) -> str:
    from causal_cli.report.experiment import html_section

    return html_section(r)


def graph_section(r: dict[str, Any], images: dict[str, bytes]) -> str:
    ident = r.get("identification")
    adjust = ", ".join(r.get("adjustment_set") or []) or "nothing"
    how = {
        "backdoor": f"backdoor adjustment for <code>{escape(adjust)}</code>",
        "iv": f"instrumental variables <code>{escape(', '.join(r.get('instruments') or []))}</code>",
        "frontdoor": f"front-door adjustment through <code>{escape(', '.join(r.get('mediators') or []))}</code>",
    }.get(ident, "no adjustment (the naive comparison)")
    unobserved = (r.get("graph") or {}).get("unobserved") or []
    extra = f" Unobserved: <code>{escape(', '.join(unobserved))}</code>." if unobserved else ""
    return "\n".join(
        ["<h2>Causal graph</h2>", f"<p>Identified by {how}.{extra}</p>", _figure(images, "graph.png")]
    )


def balance_section(r: dict[str, Any], images: dict[str, bytes]) -> str:
    diag = r.get("diagnostics") or {}
    balance = diag.get("balance") or []
    out = ["<h2>Balance</h2>"]
    if not balance:
        out.append("<p>No confounders to balance (empty adjustment set).</p>")
        return "\n".join(out)
    threshold = diag.get("smd_threshold", 0.1)
    adjustment = diag.get("adjustment", "none")
    after_word = {"matching": "after matching", "weighting": "after weighting"}.get(adjustment)
    before, after = diag.get("max_abs_smd_before"), diag.get("max_abs_smd_after")
    text = f"Largest |SMD| before adjustment: <b>{_num(before)}</b>"
    if after_word:
        text += f"; {after_word}: <b>{_num(after)}</b>"
        text += (
            f". {diag.get('n_imbalanced_after', 0)} of {len(balance)} confounders stay above the "
            f"threshold {threshold:g}."
        )
    else:
        text += (
            f". <code>{escape(r['estimator'])}</code> neither matches nor weights the sample, "
            "so balance is shown before adjustment only."
        )
    out.append(f"<p>{text}</p>")
    out.append(_figure(images, "love_plot.png"))
    rows = []
    for b in balance:
        flag_b = ' <span class="flag">▲</span>' if b.get("imbalanced_before") else ""
        flag_a = ' <span class="flag">▲</span>' if b.get("imbalanced_after") else ""
        rows.append(
            [
                f"<code>{escape(b['covariate'])}</code>",
                _num(b.get("smd_before")) + flag_b,
                _num(b.get("smd_after")) + flag_a,
                _num(b.get("variance_ratio_before")),
                _num(b.get("variance_ratio_after")),
            ]
        )
    after_label = after_word or "after"
    out.append(
        _table(
            [
                "confounder",
                "SMD before",
                f"SMD {after_label}",
                "variance ratio before",
                f"variance ratio {after_label}",
            ],
            rows,
            {1, 2, 3, 4},
        )
    )
    out.append(
        f'<p class="meta">SMD: treated − control mean difference in pooled standard deviations of the '
        f"unadjusted groups; ▲ marks |SMD| &gt; {threshold:g}. Variance ratio: treated / control.</p>"
    )
    return "\n".join(out)


def overlap_section(r: dict[str, Any], images: dict[str, bytes]) -> str:
    diag = r.get("diagnostics") or {}
    overlap = diag.get("overlap")
    out = ["<h2>Overlap</h2>"]
    if not overlap:
        out.append("<p>No overlap diagnostic for this run.</p>")
        return "\n".join(out)
    low, high = overlap["bounds"]
    if overlap.get("poor") and overlap.get("estimand") in ("att", "atc"):
        out.append(
            f'<div class="warning">{escape(overlap["message"])}; the estimate leans on extrapolation.</div>'
        )
    elif overlap.get("poor"):
        out.append(
            f'<div class="warning"><b>Poor overlap:</b> {_pct(overlap["share_outside"])} of units have a '
            f"propensity score outside [{low:g}, {high:g}] (warning above "
            f"{_pct(overlap.get('poor_share'))}); the estimate leans on extrapolation.</div>"
        )
        k = overlap.get("weight_tail_index")
        if k is not None and k > 0.5:
            out.append(
                f'<div class="warning">The inverse-propensity weights are heavy-tailed (tail index {k:.2f} &gt; 0.5: '
                "infinite variance), so weighting confidence intervals under-cover.</div>"
            )
    support = overlap.get("common_support")
    support_text = f"[{support[0]:.3f}, {support[1]:.3f}]" if support else "none (the groups do not overlap)"
    out.append(
        f"<p>{_pct(overlap['share_outside'])} of units lie outside [{low:g}, {high:g}]; common support "
        f"{support_text}, {_pct(overlap.get('share_off_support'))} of units outside it. Scores from the "
        f"{escape(str(overlap.get('propensity_source', 'estimator')))}.</p>"
    )
    out.append(_figure(images, "overlap.png"))
    rows = []
    for group, g in overlap["groups"].items():
        rows.append(
            [
                group,
                f"{g['n']:,}",
                _num(g["min"]),
                _num(g["p05"]),
                _num(g["median"]),
                _num(g["p95"]),
                _num(g["max"]),
                _pct(g["share_outside"]),
            ]
        )
    out.append(
        _table(
            ["group", "units", "min", "5%", "median", "95%", "max", f"outside [{low:g}, {high:g}]"],
            rows,
            {1, 2, 3, 4, 5, 6, 7},
        )
    )
    weights = diag.get("weights")
    if weights:
        out.append("<h3>Adjustment weights</h3>")
        rows = []
        for group, w in weights.items():
            largest = ", ".join(f"{_num(x['weight'])} ({_pct(x['share'])})" for x in w.get("largest") or [])
            rows.append(
                [
                    group,
                    f"{w['n']:,}",
                    f"{w['n_used']:,}",
                    f"{w['ess']:,.1f}",
                    _pct(w.get("ess_share")),
                    largest,
                ]
            )
        out.append(
            _table(
                [
                    "group",
                    "units",
                    "units used",
                    "effective sample size",
                    "ESS / units",
                    "largest weights (share of group total)",
                ],
                rows,
                {1, 2, 3, 4},
            )
        )
    return "\n".join(out)


def refutations_section(r: dict[str, Any], images: dict[str, bytes], tables: dict[str, list[dict]]) -> str:
    units = (r.get("graph") or {}).get("outcome_units", "")
    refs = r.get("refutations") or []
    out = ["<h2>Refutations</h2>"]
    if not refs:
        out.append("<p>No refuters were run.</p>")
        return "\n".join(out)
    judged = [x for x in refs if x.get("passed") is not None]
    passed = sum(1 for x in judged if x["passed"])
    closing = escape(refutation_closing(passed, len(judged), r.get("sensitivity")))
    closing = closing.replace(f"{passed} of {len(judged)}", f"<b>{passed} of {len(judged)}</b>", 1)
    out.append(f'<p class="summary">{closing}</p>')
    rows = []
    for x in refs:
        rule = (x.get("options") or {}).get("rule") or ""
        reason = escape(x.get("reason") or "")
        if rule:
            reason += f'<br><span class="meta">rule: {escape(rule)}</span>'
        sd = x.get("new_effect_sd")
        rows.append(
            [
                f"<code>{escape(x['name'])}</code>",
                _money(x.get("new_effect"), units),
                "—" if sd is None else _num(sd),
                "—" if x.get("p_value") is None else _num(x["p_value"]),
                str(x.get("num_simulations", "")),
                _badge(x.get("passed")),
                reason,
            ]
        )
    out.append(
        _table(
            ["refuter", "new effect", "sd", "p-value", "simulations", "verdict", "reason"], rows, {1, 2, 3, 4}
        )
    )
    out.append(_figure(images, "refutations.png"))
    if "sensitivity.png" in images or tables.get("sensitivity"):
        out.append("<h3>Sensitivity</h3>")
        out.append(_figure(images, "sensitivity.png"))
        rows_s = tables.get("sensitivity") or []
        if rows_s:
            cols = [c for c in rows_s[0] if len({row.get(c) for row in rows_s}) > 1 or c != "refuter"]
            shown = rows_s[:40]
            from causal_cli.report.plots import is_number

            numeric = {i for i, c in enumerate(cols) if all(is_number(row.get(c)) for row in shown)}
            out.append(
                _table(
                    [escape(c) for c in cols], [[_num(row.get(c), 4) for c in cols] for row in shown], numeric
                )
            )
            if len(rows_s) > len(shown):
                out.append(
                    f'<p class="meta">first {len(shown)} of {len(rows_s)} rows; all in sensitivity.csv</p>'
                )
    return "\n".join(out)


def sensitivity_section(r: dict[str, Any]) -> str:
    """The closed-form sensitivity to an unobserved confounder (always computed; no simulation)."""
    block = r.get("sensitivity")
    text = headline(block)
    if not text:
        return ""
    out = [
        '<h2 id="sensitivity">Sensitivity to an unobserved confounder</h2>',
        f'<p class="summary">{escape(text)}</p>',
    ]
    table = sensitivity_rows(block)
    if table:
        out.append(_table(["quantity", "value"], [[escape(k), escape(v)] for k, v in table], {1}))
        out.append(f'<p class="meta">{escape(block.get("method", ""))}</p>')
    return "\n".join(out)


def render_html(
    r: dict[str, Any],
    images: dict[str, bytes],
    tables: dict[str, list[dict]],
    config_text: str,
    problems: list[str] = (),
) -> str:
    question = _question(config_text)
    title = f"Effect of {r['treatment']} on {r['outcome']}"
    meta = (
        f"<code>{escape(r['estimator'])}</code> ({r['target_units'].upper()}), {r['n_rows']:,} rows, "
        f"seed {r.get('seed')}, status <b>{escape(str(r.get('status', '')))}</b>"
    )
    if r.get("runtime_s") is not None:
        meta += f", {r['runtime_s']:.1f} s"
    if r.get("started_at"):
        meta += f", started {escape(str(r['started_at']))}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="question">{escape(question)}</p>' if question else "",
        f'<p class="meta">{meta}</p>',
        f'<p class="meta">{escape(r.get("data_description") or "")}</p>' if r.get("data_description") else "",
        f'<p class="meta">command: <code>{escape(str(r["command"]))}</code></p>' if r.get("command") else "",
        headline_section(r) if not r.get("experiment") else _experiment_section(r),
        graph_section(r, images),
        balance_section(r, images),
        overlap_section(r, images),
        refutations_section(r, images, tables),
        sensitivity_section(r),
        heterogeneity_html(r, images, _figure),
    ]
    notes = list(r.get("notes") or []) + [p for p in problems if p not in (r.get("notes") or [])]
    if notes:
        parts.append("<h2>Notes</h2>")
        parts += [f'<div class="note">{escape(n)}</div>' for n in notes]
    parts.append("<h2>Configuration</h2>")
    parts.append('<p class="meta">The composed config of this run (config.yaml).</p>')
    parts.append(f"<pre>{escape(config_text) or '(config.yaml not found)'}</pre>")
    software = software_versions(r)
    parts.append("<h2>Software</h2>")
    parts.append(
        '<p class="software">'
        + "".join(f"<span><b>{escape(k)}</b> {escape(str(v))}</span>" for k, v in software.items())
        + "</p>"
    )
    parts.append(
        f"<footer>Generated {time.strftime('%Y-%m-%d %H:%M:%S')} by causal-cli from "
        f"{escape(str(r.get('output_dir') or 'the run folder'))}.</footer>"
    )
    parts.append("</main></body></html>")
    return "\n".join(p for p in parts if p) + "\n"
