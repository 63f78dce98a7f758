"""The notebook a user opens runs top to bottom without a cell error."""
import nbformat
import pytest
from nbclient import NotebookClient

from samples import ROOT

pytestmark = pytest.mark.slow  # end-to-end: `make test` runs it, `make test-fast` does not


def test_notebook_executes_on_a_collection(mini_collection, monkeypatch, tmp_path):
    monkeypatch.setenv("IR_DB_PATH", str(mini_collection["db"]))
    notebook = nbformat.read(f"{ROOT}/show_similarities.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": ROOT}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    pictures = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.data]
    assert len(pictures) == 7  # one grid per mode, the mode comparison, the UMAP map
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "chelsea/original.jpg" in text and "overlap with exact cosine" in text
    assert f"{mini_collection['count']} of {mini_collection['count']} images drawn" in text
