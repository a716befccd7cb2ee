"""Render the demo audit report and save a screenshot to docs/audit-report.png (needs
Debian's chromium). Run by `make docs`."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import ftdata
from ftdata.samples import path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("chromium is not installed")
    report = ftdata.audit(path(), stratify_by="metadata.category", max_length=128, config=False)
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(report.to_html(title="ftdata audit: support_chat.jsonl"), encoding="utf-8")
        subprocess.run(
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
                f"--user-data-dir={Path(tmp) / 'profile'}",
                "--hide-scrollbars",
                "--window-size=1280,1900",
                f"--screenshot={ROOT / 'docs' / 'audit-report.png'}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
        )


if __name__ == "__main__":
    main()
