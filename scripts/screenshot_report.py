"""Render the demo audit report and save a screenshot to docs/audit-report.png (needs
Debian's chromium). Run by `make docs`; the tests take their headless browser from here."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def chromium() -> str | None:
    """The chromium executable, or None when it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(
    page: Path, shot: Path, profile: Path, *, size: tuple[int, int], extra: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """Open ``page`` in headless chromium, offline and with a fresh ``profile`` folder, and
    save a ``size`` screenshot to ``shot``."""
    browser = chromium()
    if browser is None:
        raise FileNotFoundError("chromium is not installed")
    return subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *extra,
            "--hide-scrollbars",
            f"--window-size={size[0]},{size[1]}",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def main() -> None:
    import ftdata
    from ftdata.samples import path

    if chromium() is None:
        sys.exit("chromium is not installed")
    report = ftdata.audit(path(), stratify_by="metadata.category", max_length=128, config=False)
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(report.to_html(title="ftdata audit: support_chat.jsonl"), encoding="utf-8")
        result = screenshot(page, ROOT / "docs" / "audit-report.png", Path(tmp) / "profile", size=(1280, 1900))
        if result.returncode != 0:
            sys.exit(result.stderr[-2000:])


if __name__ == "__main__":
    main()
