"""The evaluation report: per-model summaries, per-example results, JSON, a rich table and HTML."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftdata_train.evaluate.examples import PathLike, Skipped
from ftdata_train.evaluate.scoring import Score

if TYPE_CHECKING:  # pragma: no cover
    from rich.table import Table


# ---------------------------------------------------------------------------------------------
# The report


@dataclass(frozen=True, slots=True)
class Generation:
    """One model's reply to one eval prompt, its score and its loss on the reference."""

    text: str
    score: Score
    loss: float | None
    tokens: int

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "loss": self.loss, "trained_tokens": self.tokens, **self.score.to_dict()}


@dataclass(frozen=True, slots=True)
class ExampleResult:
    """An eval example with every model's reply."""

    index: int
    line: int | None
    prompt: str
    reference: str
    outputs: dict[str, Generation]

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "line": self.line,
            "prompt": self.prompt,
            "reference": self.reference,
            "outputs": {k: v.to_dict() for k, v in self.outputs.items()},
        }


@dataclass(frozen=True, slots=True)
class ModelSummary:
    """One model's figures over the eval set."""

    label: str
    name: str
    loss: float | None
    perplexity: float | None
    trained_tokens: int
    examples: int
    exact_match: float
    f1: float
    repetition: float
    compliance: float
    findings: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "name": self.name,
            "loss": self.loss,
            "perplexity": self.perplexity,
            "trained_tokens": self.trained_tokens,
            "examples": self.examples,
            "exact_match": self.exact_match,
            "f1": self.f1,
            "repetition": self.repetition,
            "compliance": self.compliance,
            "findings": dict(self.findings),
        }


@dataclass(frozen=True, slots=True)
class EvalReport:
    """Base versus tuned on one eval file. ``models`` is keyed ``"base"`` (absent when a full
    model was evaluated without a base) and ``"tuned"``; ``skipped`` lists the records that
    were not scored (unreadable, or without an assistant reply), each with its line."""

    eval_file: str
    models: dict[str, ModelSummary]
    examples: tuple[ExampleResult, ...]
    rules: tuple[str, ...]
    max_new_tokens: int
    notes: tuple[str, ...] = ()
    skipped: tuple[Skipped, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-serialisable."""
        return {
            "eval_file": self.eval_file,
            "rules": list(self.rules),
            "max_new_tokens": self.max_new_tokens,
            "models": {k: v.to_dict() for k, v in self.models.items()},
            "examples": [e.to_dict() for e in self.examples],
            "notes": list(self.notes),
            "skipped": [s.to_dict() for s in self.skipped],
        }

    def worst(self, n: int = 20) -> list[ExampleResult]:
        """The ``n`` examples the tuned model does worst on: lowest F1, then most format
        findings, then highest loss."""

        def key(e: ExampleResult) -> tuple[float, int, float]:
            g = e.outputs["tuned"]
            return (g.score.f1, -len(g.score.findings), -(g.loss if g.loss is not None else 0.0))

        return sorted(self.examples, key=key)[:n]

    def table(self) -> Table:
        """The summary, one column per model, for a terminal."""
        from rich.table import Table
        from rich.text import Text

        # Text, not str: a path or a rule message may hold [brackets] rich would read as markup.
        table = Table(title=Text(f"eval: {self.eval_file}"), title_justify="left")
        table.add_column("metric")
        for label, summary in self.models.items():
            table.add_column(Text(f"{label}\n{summary.name}"), justify="right", overflow="fold")
        for name, cells in self._rows():
            table.add_row(Text(name), *(Text(c) for c in cells))
        return table

    def _rows(self) -> list[tuple[str, list[str]]]:
        models = list(self.models.values())
        codes = sorted({c for m in models for c in m.findings})
        rows = [
            ("eval loss", [_num(m.loss, 4) for m in models]),
            ("perplexity", [_num(m.perplexity, 2) for m in models]),
            ("trained tokens", [f"{m.trained_tokens:,}" for m in models]),
            ("exact match", [f"{m.exact_match:.1%}" for m in models]),
            ("token F1", [f"{m.f1:.3f}" for m in models]),
            ("repetition", [f"{m.repetition:.3f}" for m in models]),
            ("format compliance", [f"{m.compliance:.1%}" for m in models]),
        ]
        rows.extend((f"  {code} findings", [str(m.findings.get(code, 0)) for m in models]) for code in codes)
        return rows

    def _html_body(self, worst: int = 20) -> str:
        e = html.escape
        labels = list(self.models)
        head = "".join(f"<th>{e(label)}<br><small>{e(self.models[label].name)}</small></th>" for label in labels)
        rows = "".join(
            "<tr><td>" + e(name) + "</td>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>"
            for name, cells in self._rows()
        )
        parts = [
            f"<h1>Evaluation of {e(self.eval_file)}</h1>",
            f"<p>{len(self.examples)} examples; greedy generation, at most {self.max_new_tokens} new tokens;"
            f" format rules: {e(', '.join(self.rules))}.</p>",
            f"<table class='summary'><tr><th>metric</th>{head}</tr>{rows}</table>",
        ]
        parts.extend(f"<p class='note'>{e(note)}</p>" for note in self.notes)
        parts.append(f"<h2>Worst examples (tuned), {min(worst, len(self.examples))} of {len(self.examples)}</h2>")
        for example in self.worst(worst):
            where = f"line {example.line}" if example.line is not None else f"record {example.index}"
            cells = [f"<div class='cell'><h4>reference</h4><pre>{e(example.reference)}</pre></div>"]
            for label in labels:
                g = example.outputs[label]
                findings = "".join(f"<li>{e(f.code)}: {e(f.message)}</li>" for f in g.score.findings)
                cells.append(
                    f"<div class='cell'><h4>{e(label)}</h4><pre>{e(g.text)}</pre>"
                    f"<p class='score'>F1 {g.score.f1:.3f} · exact {'yes' if g.score.exact_match else 'no'}"
                    f" · repetition {g.score.repetition:.2f} · loss {e(_num(g.loss, 3))}</p>"
                    + (f"<ul>{findings}</ul>" if findings else "")
                    + "</div>"
                )
            parts.append(
                f"<section><h3>{e(where)}</h3><details><summary>prompt</summary><pre>{e(example.prompt)}</pre>"
                f"</details><div class='row'>{''.join(cells)}</div></section>"
            )
        return "\n".join(parts)

    def _repr_html_(self) -> str:
        return f"<div class='ftdata-eval'>{_CSS}{self._html_body(worst=5)}</div>"

    def to_html(self, path: PathLike, *, worst: int = 20) -> Path:
        """Write a self-contained HTML page (no scripts, no external files): the summary
        table, then the ``worst`` examples with prompt, reference and every model's reply.
        Raises ``ftdata.outputs.OutputError`` when ``path`` is the eval file or its folder
        is missing or read-only."""
        from ftdata.io import atomic_write
        from ftdata.outputs import check_outputs

        target = Path(path)
        check_outputs([self.eval_file], [target])
        page = (
            "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>ftdata eval: {html.escape(Path(self.eval_file).name)}</title>{_CSS}</head>"
            f"<body>{self._html_body(worst=worst)}</body></html>\n"
        )
        with atomic_write(target, "wb") as fh:
            fh.write(page.encode("utf-8"))
        return target


_CSS = (
    "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:80em}"
    "table.summary{border-collapse:collapse}table.summary td,table.summary th{border:1px solid #ccc;"
    "padding:.3em .7em;text-align:right}table.summary td:first-child{text-align:left}"
    ".row{display:flex;gap:1em}.cell{flex:1;min-width:0}pre{white-space:pre-wrap;background:#f6f6f6;"
    "padding:.5em;margin:0}.score{color:#555;font-size:.9em}.note{color:#8a5a00}"
    "section{border-top:1px solid #ddd;margin-top:1em}</style>"
)


def _num(value: float | None, digits: int) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "inf"
    return f"{value:.{digits}f}"
