"""The analysts' notebooks run, on the sample city, and their .ipynb match the .py (jupytext)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ["01_sample_city_walkthrough", "02_evaluate_your_model", "03_nightly_register"]


def _model(tmp_path_factory: pytest.TempPathFactory) -> str:
    from changedetect.weights import list_shipped

    if any(c.name == "vhr-building" for c in list_shipped()):
        return "vhr-building"
    from changedetect.testing import make_model

    return str(make_model(tmp_path_factory.mktemp("nbmodel") / "tiny-model"))


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    repo = NOTEBOOKS.parent
    if not (repo / "sample_tiles" / "manifest.json").is_file():
        pytest.skip("sample_tiles/ is absent: run `python -m changedetect.samplecity`")
    saved = {k: os.environ.get(k) for k in ("CHANGEDETECT_NOTEBOOK_MODEL", "CHANGEDETECT_NOTEBOOK_CROP", "CHANGEDETECT_NOTEBOOK_PAIRS")}
    os.environ["CHANGEDETECT_NOTEBOOK_MODEL"] = _model(tmp_path_factory)
    os.environ["CHANGEDETECT_NOTEBOOK_CROP"] = "256"
    os.environ["CHANGEDETECT_NOTEBOOK_PAIRS"] = "4"
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.mark.parametrize("name", NAMES)
def test_ipynb_is_paired_with_py(name: str) -> None:
    import jupytext

    py = jupytext.read(NOTEBOOKS / f"{name}.py")
    nb = jupytext.read(NOTEBOOKS / f"{name}.ipynb")
    code = lambda book: [c.source.strip() for c in book.cells if c.cell_type == "code"]  # noqa: E731
    assert code(py) == code(nb), f"run `jupytext --sync notebooks/{name}.py`"


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name: str, env: None, tmp_path: Path) -> None:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    images = sum(any(k.startswith("image/") for k in out.get("data", {})) for c in nb.cells
                 if c.cell_type == "code" for out in c.get("outputs", []))
    assert images >= 3, "the notebook draws its figures"
    nbformat.write(nb, tmp_path / f"{name}.ipynb")
