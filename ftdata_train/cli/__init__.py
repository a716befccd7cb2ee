"""``ftdata train``, ``ftdata merge`` and ``ftdata eval``: click commands that ftdata's command
line loads through its ``ftdata.commands`` entry-point group. Each body is a few calls into
:mod:`ftdata_train`; this module holds what they share: how errors become exit codes.

Exit codes, as for ftdata: 0 done, 1 the data gate refused the run (its findings are listed),
2 a configuration, usage, environment or I/O error.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from ftdata.cli import UsageFailure

__all__ = ["UsageFailure", "errors_to_exit_codes", "print_gate_refusal"]


def print_gate_refusal(error: Any, output_format: str) -> None:
    """The refusal's findings (or, without findings, its details) and what to do on stdout, one
    a line or as JSON, printed once; its one-line headline on stderr."""
    from ftdata.render.text import visible

    findings = list(getattr(error, "findings", ()) or ())
    message = str(error)
    headline = getattr(error, "headline", None) or (message.splitlines() or [""])[0]
    details = list(getattr(error, "details", ()) or ())
    if output_format == "json":
        import json

        payload = {
            "refused": True,
            "headline": headline,
            "message": message,
            "details": details,
            "findings": [f.to_dict() for f in findings],
        }
        click.echo(json.dumps(payload, indent=2, default=str))
    else:
        from ftdata.render.concise import finding_line

        for finding in findings:
            click.echo(finding_line(finding))
        for line in details:
            click.echo(visible(line))
    click.echo(f"ftdata: the data gate refused the run: {visible(headline)}", err=True)


def _is_gate_refusal(error: ValueError) -> bool:
    try:
        from ftdata_train.data import GateError
    except ImportError:  # without the data gate's module nothing can have refused
        return False
    return isinstance(error, GateError)


@contextmanager
def errors_to_exit_codes(output_format: str = "text") -> Iterator[None]:
    """Turn the library's errors into ftdata's exit codes: a gate refusal exits 1 with its
    findings; a config, merge, output or I/O error exits 2 with one line on stderr."""
    from ftdata_train.config import ConfigError

    try:
        yield
    except ConfigError as exc:
        raise UsageFailure(str(exc)) from None
    except ValueError as exc:
        if _is_gate_refusal(exc):
            print_gate_refusal(exc, output_format)
            sys.exit(1)
        # MergeError, OutputError and the other refusals of bad input are ValueErrors
        raise UsageFailure(str(exc)) from None
    except OSError as exc:
        raise UsageFailure(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")) from None
