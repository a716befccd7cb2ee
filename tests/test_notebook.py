"""The walkthrough notebook runs from top to bottom, and is stored without outputs."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT

NOTEBOOK = ROOT / "notebooks" / "audit_walkthrough.ipynb"
TRAIN_NOTEBOOK = ROOT / "notebooks" / "train_walkthrough.ipynb"


@pytest.mark.parametrize("notebook", [NOTEBOOK, TRAIN_NOTEBOOK], ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(notebook) -> None:
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], "strip outputs before committing"
            assert cell.execution_count is None


@pytest.mark.slow
def test_notebook_runs(tmp_path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o for o in outputs if o.output_type == "execute_result" and "text/html" in o.get("data", {})]
    assert any("<svg" in o["data"]["text/html"] for o in html), "the audit report should render as HTML"
    assert any("0 leaked pairs" in "".join(o.get("text", "")) for o in outputs)


@pytest.mark.slow
def test_train_notebook_runs(tmp_path) -> None:
    pytest.importorskip("trl")
    nb = nbformat.read(TRAIN_NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "[[" in text, "the label preview should mark trained tokens"
    html = [o for o in outputs if o.output_type == "execute_result" and "text/html" in o.get("data", {})]
    assert any("Worst examples" in o["data"]["text/html"] for o in html), "the evaluation should render as HTML"
