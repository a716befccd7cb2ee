"""The audit as HTML: a fragment for notebooks (``_repr_html_``) and a self-contained page
(inline CSS and SVG; no scripts, fonts or anything fetched)."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ftdata import registry
from ftdata._version import __version__
from ftdata.findings import Finding, Severity
from ftdata.labels import TRUNCATED_MARK
from ftdata.render import svg
from ftdata.render.jsonout import dumps
from ftdata.render.text import visible

if TYPE_CHECKING:  # pragma: no cover
    from ftdata.auditing import AuditReport
    from ftdata.measure import AuditStats

TOP_FINDINGS = 100
EXCERPT = 240

CSS = """
.ftdata { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; color: #1f2328; max-width: 1180px; }
.ftdata h1 { font-size: 22px; margin: 8px 0; } .ftdata h2 { font-size: 17px; margin: 22px 0 8px; border-bottom: 1px solid #d0d7de; }
.ftdata h3 { font-size: 14px; margin: 14px 0 6px; }
.ftdata table { border-collapse: collapse; font-size: 13px; margin: 6px 0 12px; }
.ftdata th, .ftdata td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left; vertical-align: top; }
.ftdata th { background: #f6f8fa; } .ftdata td.n { text-align: right; font-variant-numeric: tabular-nums; }
.ftdata .error { color: #b42318; font-weight: 600; } .ftdata .warning { color: #9a6700; font-weight: 600; } .ftdata .info { color: #0969da; }
.ftdata .cards { display: flex; flex-wrap: wrap; gap: 10px; } .ftdata .card { border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 12px; min-width: 120px; }
.ftdata .card b { display: block; font-size: 20px; } .ftdata .plots { display: flex; flex-wrap: wrap; gap: 14px; }
.ftdata .plots svg { border: 1px solid #eaeef2; border-radius: 4px; background: #fff; }
.ftdata code, .ftdata pre { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
.ftdata pre { white-space: pre-wrap; margin: 0; max-width: 620px; } .ftdata .muted { color: #57606a; font-size: 12px; }
.ftdata pre.labels { max-width: 1100px; border: 1px solid #eaeef2; padding: 6px 8px; }
.ftdata mark.trained { background: #dafbe1; color: #116329; border-bottom: 1px solid #1a7f37; }
.ftdata .masked { color: #6e7781; } .ftdata .cut { color: #b42318; font-weight: 600; }
.ftdata .banner { border: 1px solid #b42318; background: #fff4f2; color: #7a1a10; border-radius: 6px; padding: 8px 12px; margin: 8px 0; font-weight: 600; }
"""


def _e(value: object) -> str:
    # Control characters are not allowed in HTML text and surrogates cannot be encoded:
    # both are shown as escapes; line breaks stay for <pre> blocks.
    return html.escape(visible(value, keep_lines=True), quote=True)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], numeric: Sequence[int] = ()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for k, cell in enumerate(row):
            cls = ' class="n"' if k in numeric else ""
            cells.append(f"<td{cls}>{cell if isinstance(cell, _Raw) else _e(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


class _Raw(str):
    """Already-escaped HTML for a table cell."""


def _summary(report: AuditReport) -> str:
    counts = report.severity_counts()
    stats = report.stats
    cards = [
        ("records", f"{report.total_records:,}"),
        ("readable", f"{sum(s.valid for s in stats):,}"),
        ("errors", f"{counts[Severity.ERROR]:,}"),
        ("warnings", f"{counts[Severity.WARNING]:,}"),
        ("files", f"{len(report.sources):,}"),
    ]
    out = [f'<p class="banner" role="alert">{_e(text)}</p>' for text in report.warnings]
    out.append(
        '<div class="cards">' + "".join(f'<div class="card"><b>{_e(v)}</b>{_e(k)}</div>' for k, v in cards) + "</div>"
    )
    by_rule = Counter((f.code, f.severity) for f in report.findings)
    rows = []
    for (code, sev), n in sorted(by_rule.items(), key=lambda kv: (-kv[0][1], -kv[1], kv[0][0])):
        try:
            rule = registry.get(code)
            name, summary = rule.name, rule.summary
        except KeyError:
            name, summary = "", ""
        rows.append([code, name, _Raw(f'<span class="{sev}">{sev}</span>'), n, summary])
    if rows:
        out.append(
            "<h2>Findings by rule</h2>"
            + _table(["code", "rule", "severity", "findings", "what it checks"], rows, numeric=[3])
        )
    else:
        out.append("<h2>Findings by rule</h2><p>No findings.</p>")
    return "".join(out)


def _stats_section(stats: AuditStats) -> str:
    parts = [f"<h2>Dataset: {_e(stats.source)}</h2>"]
    fmt = ", ".join(f"{k} ({v:,})" for k, v in stats.formats.items()) or "none"
    token_note = (
        f"exact, tokenizer {_e(stats.tokenizer)}" if not stats.tokens_estimated else "estimated at 4 characters a token"
    )
    parts.append(
        f'<p class="muted">{stats.valid:,} of {stats.records:,} records readable; formats: {_e(fmt)}; '
        f"token counts {token_note}; distinct word bigrams of the prompts: "
        f"{'n/a' if stats.distinct_2 is None else f'{stats.distinct_2:.3f}'}.</p>"
    )
    plots = [_token_plot(stats)]
    for role in ("system", "user", "assistant", "tool"):
        values = stats.tokens_by_role.get(role)
        if values:
            plots.append(svg.histogram(f"Tokens per record: {role}", values, x_label="tokens", marker=None))
    plots.append(
        svg.bar_chart(
            "Turns per conversation (without system)",
            [str(k) for k in stats.turns],
            list(stats.turns.values()),
            x_label="turns",
        )
    )
    if stats.patterns:
        plots.append(svg.bar_chart("Role patterns", [p for p, _ in stats.patterns], [n for _, n in stats.patterns]))
    labels = [_short(t) or "(empty)" for t, _ in stats.system_prompts] + (
        ["(none)"] if stats.without_system_prompt else []
    )
    values = [n for _, n in stats.system_prompts] + (
        [stats.without_system_prompt] if stats.without_system_prompt else []
    )
    if labels:
        plots.append(svg.bar_chart("System prompts", labels, values))
    if stats.duplicate_clusters:
        plots.append(
            svg.bar_chart(
                "Exact-duplicate clusters by size",
                [str(k) for k in stats.duplicate_clusters],
                list(stats.duplicate_clusters.values()),
                x_label="records in cluster",
                y_label="clusters",
            )
        )
    if stats.strata:
        items = list(stats.strata.items())[:20]
        plots.append(svg.bar_chart(f"Balance of {stats.stratify_by}", [k for k, _ in items], [v for _, v in items]))
    plots.append(_trained_plot(stats))
    parts.append('<div class="plots">' + "".join(plots) + "</div>")
    parts.append("<h3>Roles</h3>" + _table(["role", "messages"], list(stats.messages_per_role.items()), numeric=[1]))
    if stats.system_prompts:
        rows = [[_Raw(f"<pre>{_e(text[:400])}</pre>"), n] for text, n in stats.system_prompts]
        parts.append("<h3>Most common system prompts</h3>" + _table(["system prompt", "records"], rows, numeric=[1]))
    totals = stats.to_dict()["tokens"]
    rows = [["all", *_row(totals["total"])]] + [[role, *_row(v)] for role, v in totals["by_role"].items()]
    parts.append(
        "<h3>Tokens per record</h3>"
        + _table(["role", "records", "mean", "median", "p95", "max"], rows, numeric=[1, 2, 3, 4, 5])
    )
    return "".join(parts)


def _row(summary: dict[str, float]) -> list[object]:
    return [
        summary.get("count", 0),
        summary.get("mean", ""),
        summary.get("p50", ""),
        summary.get("p95", ""),
        summary.get("max", ""),
    ]


def _short(text: str, width: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def counted(stats: AuditStats) -> dict[str, str]:
    """What the token figures count where a record is more than one sequence or trains on
    less than its reply, by figure (``length``, ``over``, ``trained``): notes for their labels."""
    notes = {"length": "longer side of a pair", "over": "either side of a pair"} if stats.pairs else {}
    trained = ["both replies of a pair"] * bool(stats.pairs) + ["one token per labelled step"] * bool(stats.stepwise)
    return notes | ({"trained": "; ".join(trained)} if trained else {})


def steps_text(stats: AuditStats) -> str:
    """The labelled steps of stepwise records: how many, and how many true and false."""
    steps = stats.steps_true + stats.steps_false
    return f"{steps:,} labelled steps ({stats.steps_true:,} true, {stats.steps_false:,} false)"


def _token_plot(stats: AuditStats) -> str:
    label = f"max_length {stats.max_length:,}" if stats.max_length else ""
    notes = [n for n in ("estimated" if stats.tokens_estimated else "", counted(stats).get("length", "")) if n]
    title = "Tokens per record" + (f" ({'; '.join(notes)})" if notes else "")
    x_label = "tokens after the chat template" if not stats.stepwise else "tokens"
    return svg.histogram(title, stats.tokens_total, marker=stats.max_length, marker_label=label, x_label=x_label)


def _trained_plot(stats: AuditStats) -> str:
    share = f"{stats.trained_share:.1%}" if stats.stepwise else f"{stats.trained_share:.0%}"
    note = counted(stats).get("trained")
    names = ["assistant (trained)", "prompt (not trained)", "cut by max_length"]
    if stats.pairs:
        names[:2] = ["both replies (trained)", "prompt, once per reply (not trained)"]
    if stats.stepwise:
        names[:2] = [f"{steps_text(stats)} (trained)", "other tokens (not trained)"]
    return svg.bar_chart(
        f"Tokens trained on{f' ({note})' if note else ''}: {share} of those kept",
        names,
        [stats.trained_tokens, stats.prompt_tokens, stats.truncated_tokens],
        y_label="tokens",
    )


def _value_at(data: Any, path: Sequence[str | int]) -> Any:
    value = data
    for part in path:
        if (isinstance(value, dict) and part in value) or (
            isinstance(value, list) and isinstance(part, int) and part < len(value)
        ):
            value = value[part]  # type: ignore[index]
        else:
            return data
    return value


def _excerpt(data: Any, f: Finding) -> str:
    value = _value_at(data, f.path) if data is not None else None
    text = value if isinstance(value, str) else dumps(value).decode() if value is not None else ""
    return text if len(text) <= EXCERPT else text[: EXCERPT - 1] + "…"


def top_findings(findings: Sequence[Finding], limit: int = TOP_FINDINGS) -> list[Finding]:
    """At most ``limit`` findings that show every rule: the first finding of each rule in
    turn, rules with errors first, then the most frequent; in file order within a rule."""
    by_code: dict[str, list[Finding]] = {}
    for f in sorted(findings, key=lambda f: f.sort_key()):
        by_code.setdefault(f.code, []).append(f)
    codes = sorted(by_code, key=lambda c: (-max(f.severity for f in by_code[c]), -len(by_code[c]), c))
    chosen: list[Finding] = []
    depth = 0
    while len(chosen) < limit and len(chosen) < len(findings):
        chosen += [by_code[c][depth] for c in codes if depth < len(by_code[c])][: limit - len(chosen)]
        depth += 1
    return sorted(chosen, key=lambda f: (-f.severity, codes.index(f.code), f.sort_key()))


def _top_findings(report: AuditReport) -> str:
    chosen = top_findings(report.findings)
    if not chosen:
        return ""
    records: dict[str, dict[int, Any]] = {}
    for source in {f.source for f in chosen}:
        records[source] = report.fetch(source, {f.index for f in chosen if f.source == source and f.index is not None})
    rows = []
    for f in chosen:
        where = (
            f"{f.source}:{f.line}"
            if f.line is not None
            else (f"{f.source}[{f.index}]" if f.index is not None else f.source)
        )
        data = records.get(f.source, {}).get(f.index) if f.index is not None else None
        excerpt = _excerpt(data, f) if data is not None else ""
        rows.append(
            [
                _Raw(f'<span class="{f.severity}">{f.code}</span>'),
                where,
                _Raw(_e(f.message) + (f'<br><span class="muted">{_e(f.json_path)}</span>' if f.path else "")),
                _Raw(f"<pre>{_e(excerpt)}</pre>"),
            ]
        )
    more = (
        f" ({TOP_FINDINGS} of {len(report.findings):,}: some of each rule, errors first)"
        if len(report.findings) > TOP_FINDINGS
        else ""
    )
    return f"<h2>Findings{_e(more)}</h2>" + _table(["rule", "where", "message", "excerpt"], rows)


def pairs_section(figures: Mapping[str, Any] | None) -> str:
    """The ``preference`` figures of a file (how often the chosen reply is the longer one)
    and its ``kto`` figures (the label balance and the weights TRL's ``KTOConfig`` wants),
    as small tables with FT706's and FT705's warnings; empty for a file with neither."""
    parts = []
    pairs = (figures or {}).get("preference")
    if pairs:
        by = {"characters": pairs, **({"tokens": pairs["tokens"]} if pairs.get("tokens") else {})}
        rows = [
            ["pairs", *(v["pairs"] for v in by.values())],
            ["replies of equal length", *(v["equal_length"] for v in by.values())],
            ["chosen reply longer", *(f"{v['chosen_longer']:,} ({v['chosen_longer_share']:.1%})" for v in by.values())],
            ["median chosen:rejected length ratio", *(_ratio(v["median_length_ratio"]) for v in by.values())],
        ]
        longer = pairs["chosen_longer"]
        plot = svg.bar_chart(
            "Longer reply of each pair (characters)",
            ["chosen", "rejected", "equal"],
            [longer, pairs["pairs"] - pairs["equal_length"] - longer, pairs["equal_length"]],
            y_label="pairs",
        )
        parts.append(
            "<h3>Preference pairs: length bias</h3>"
            + _warned("FT706", pairs.get("warning"))
            + f'<div class="plots">{_table(["", *by], rows, numeric=list(range(1, len(by) + 1)))}{plot}</div>'
        )
    kto = (figures or {}).get("kto")
    if kto:
        weights = (
            f"desirable_weight={kto['desirable_weight']:g}, undesirable_weight={kto['undesirable_weight']:g} "
            f"(weighted ratio {kto['weighted_ratio']:.2f}; TRL asks for 1 to 4/3)"
            if kto["desirable_weight"] is not None
            else "n/a: KTO needs both kinds"
        )
        rows = [
            ["desirable", kto["desirable"]],
            ["undesirable", kto["undesirable"]],
            ["label not a boolean", kto["not_boolean"]],
            ["desirable:undesirable", _ratio(kto["ratio"]) + (":1" if kto["ratio"] is not None else "")],
            ["KTOConfig weights", weights],
        ]
        plot = svg.bar_chart(
            "KTO labels",
            ["desirable", "undesirable", "not a boolean"],
            [kto["desirable"], kto["undesirable"], kto["not_boolean"]],
        )
        parts.append(
            "<h3>Unpaired preference (KTO): labels</h3>"
            + _warned("FT705", kto.get("warning"))
            + f'<div class="plots">{_table(["", "value"], rows, numeric=[1])}{plot}</div>'
        )
    return "".join(parts)


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _warned(code: str, message: str | None) -> str:
    return f'<p class="warning">{code}: {_e(message)}</p>' if message else ""


def labels_section(report: AuditReport) -> str:
    """The records of ``report.labels`` as the trainer sees them: trained text highlighted
    (``<mark class="trained">``), masked text dimmed, all of it escaped; empty without labels."""
    views = getattr(report, "labels", None) or []
    if not views:
        return ""
    tokenizer = next((s.tokenizer for s in report.stats if s.tokenizer), "")
    max_length = next((s.max_length for s in report.stats if s.max_length), None)
    cut = f"truncated to max_length {max_length:,}" if max_length else "not truncated (no max_length given)"
    parts = [
        f"<h2>What the trainer trains on: the first {len(views):,} records</h2>"
        f'<p class="muted">After the chat template of {_e(tokenizer)}, {cut}; loss as ftdata train'
        " resolves <code>auto</code> (assistant turns of conversations, the completion of prompt/completion"
        ' data, every token of text). <mark class="trained">Highlighted</mark>: tokens trained on;'
        ' <span class="masked">grey</span>: masked (label -100).</p>'
    ]
    for view in views:
        where = f"{view.source}:{view.line}" if view.line is not None else f"{view.source}[{view.index}]"
        if view.error is not None:
            parts.append(f'<h3>{_e(where)}</h3><p class="error">{_e(view.error)}</p>')
            continue
        figures = f"{view.tokens:,} tokens, {view.trained_tokens:,} trained"
        if view.truncated:
            figures += "; cut by max_length"
        text = "".join(
            f'<mark class="trained">{_e(t)}</mark>' if flag else f'<span class="masked">{_e(t)}</span>'
            for flag, t in view.pieces
        )
        if view.truncated:
            text += f'<span class="cut">{_e(TRUNCATED_MARK)}</span>'
        parts.append(f'<h3>{_e(where)} <span class="muted">{_e(figures)}</span></h3><pre class="labels">{text}</pre>')
    return "".join(parts)


def report_fragment(report: AuditReport, stats: Sequence[AuditStats]) -> str:
    """The report as an HTML fragment (what Jupyter shows)."""
    body = [f"<style>{CSS}</style>", '<div class="ftdata">', _summary(report)]
    pairs = getattr(report, "pairs", {})
    body.extend(_stats_section(s) + pairs_section(pairs.get(s.source)) for s in stats)
    body.append(labels_section(report))
    body.append(_top_findings(report))
    body.append(f'<p class="muted">ftdata {__version__}</p></div>')
    return "".join(body)


def report_page(report: AuditReport, stats: Sequence[AuditStats], *, title: str = "ftdata audit") -> str:
    """A complete, self-contained HTML page."""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{_e(title)}</title></head>'
        f'<body><h1 class="ftdata" style="font-family: sans-serif">{_e(title)}</h1>{report_fragment(report, stats)}</body></html>\n'
    )


def json_ready(report: AuditReport) -> dict[str, Any]:
    return report.to_json()
