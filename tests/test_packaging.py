"""A city installs changedetect as a package, not from a checkout: the wheel must carry the
shipped models (weights, cards, metadata), the report's template and every module, and the
installed copy must find its models without the repository.

The sdist is built (offline, with this environment's setuptools) from a copy of the working
tree, and the wheel from that sdist, as ``python -m build`` does: so the sdist is checked to
hold what a wheel build needs, and the repository is left as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: what a wheel build reads from the checkout (pyproject.toml, MANIFEST.in and the package-dir)
TREE = ("pyproject.toml", "README.md", "MANIFEST.in", "changedetect", "models")

pytestmark = pytest.mark.timeout(300)  # a hang guard: each build takes seconds


def _setuptools_or_skip() -> None:
    setuptools = pytest.importorskip("setuptools", reason="setuptools is not installed; the wheel cannot be built")
    major = int(setuptools.__version__.split(".")[0])
    if major < 77:
        pytest.skip(f"setuptools {setuptools.__version__} is older than pyproject's build-system needs "
                    "(setuptools>=77); pip install 'setuptools>=77'")


def _backend(call: str, out: Path, cwd: Path) -> Path:
    """Run ``setuptools.build_meta.<call>(out)`` in ``cwd`` (a fresh process, as a build frontend
    does) and return the file it made."""
    code = f"import sys, setuptools.build_meta as b; print(b.{call}(sys.argv[1]))"
    res = subprocess.run([sys.executable, "-c", code, str(out)], cwd=cwd, capture_output=True, text=True)
    assert res.returncode == 0, f"{call} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return out / res.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sdist, wheel): the sdist built from a copy of the tree, the wheel built from the sdist."""
    _setuptools_or_skip()
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"
    for name in TREE:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(path, src / name)
    sdist = _backend("build_sdist", tmp / "dist", src)
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp / "unpacked", filter="data")
    (root,) = (tmp / "unpacked").iterdir()
    wheel = _backend("build_wheel", tmp / "dist", root)
    return sdist, wheel


def _model_folders() -> list[Path]:
    """Every model folder under the repository's models/ (a stage's too), relative to it."""
    return sorted(p.parent.relative_to(REPO / "models") for p in (REPO / "models").rglob("metadata.json"))


def test_the_repository_ships_models() -> None:
    """The checks below are about something: the checkout has its models and a stage."""
    folders = _model_folders()
    assert Path("vhr-building") in folders and Path("s2-urban") in folders
    assert Path("vhr-building/buildings") in folders


def test_wheel_carries_models_with_matching_sha256(built: tuple[Path, Path]) -> None:
    """Each model's weights, card and metadata are in the wheel under changedetect/models/, and
    the weights' sha256 is the one their metadata states (what load_model checks)."""
    _, wheel = built
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        for rel in _model_folders():
            base = f"changedetect/models/{rel.as_posix()}"
            for f in ("weights.pt", "metadata.json", "MODEL_CARD.md"):
                assert f"{base}/{f}" in names, f"{base}/{f} is not in {wheel.name}"
            meta = json.loads(z.read(f"{base}/metadata.json").decode("utf-8-sig"))
            digest = hashlib.sha256(z.read(f"{base}/weights.pt")).hexdigest()
            assert meta["sha256"], f"{base}/metadata.json has no sha256"
            assert digest == meta["sha256"].strip().lower(), f"{base}/weights.pt does not match its metadata"
        assert not [n for n in names if Path(n).name.endswith((".tmp", ".old"))]


def test_wheel_carries_templates_and_every_module(built: tuple[Path, Path]) -> None:
    """The report's template, py.typed, and every module of the package (pyproject lists the
    packages: a new subpackage missing from the list fails here)."""
    _, wheel = built
    names = set(zipfile.ZipFile(wheel).namelist())
    pkg = REPO / "changedetect"
    wanted = [p for p in pkg.rglob("*.py") if "__pycache__" not in p.parts]
    wanted += [p for p in (pkg / "templates").iterdir() if p.is_file()]
    wanted.append(pkg / "py.typed")
    missing = [p.relative_to(REPO).as_posix() for p in wanted if p.relative_to(REPO).as_posix() not in names]
    assert not missing, f"not in {wheel.name}: {missing}"
    assert "changedetect/templates/report.html" in names


def test_installed_copy_finds_and_loads_its_models(built: tuple[Path, Path], tmp_path: Path) -> None:
    """The wheel unpacked as site-packages would hold it, away from the checkout: the shipped
    models are found in the package's own models/ (not in a stray site-packages/models of
    another distribution), load with their sha256 checked (damaged weights are refused, with the
    way to restore an installed copy), and $CHANGEDETECT_MODELS comes first."""
    _, wheel = built
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    decoy = site / "models" / "decoy"  # a top-level 'models' another distribution installed
    decoy.mkdir(parents=True)
    (decoy / "metadata.json").write_text("{}", encoding="utf-8")
    extra = tmp_path / "extra"
    extra.mkdir()
    code = """if True:
        import json, changedetect, changedetect.weights as w
        names = [c.name for c in w.list_shipped()]
        for n in names:
            w.load_model(n)
        seg = w.building_segmenter("vhr-building")
        with open(w.find_model("s2-urban") / "weights.pt", "ab") as f:  # damaged after install
            f.write(b"x")
        try:
            w.load_model("s2-urban")
            damaged = "loaded"
        except w.ModelError as exc:
            damaged = str(exc)
        print(json.dumps({"file": changedetect.__file__, "dirs": [str(d) for d in w.models_dirs()],
                          "names": names, "segmenter": seg.card.name if seg else None,
                          "damaged": damaged}))
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CHANGEDETECT_MODELS")}
    env.update(PYTHONPATH=str(site), CHANGEDETECT_MODELS=str(extra))
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert Path(out["file"]).resolve() == (site / "changedetect" / "__init__.py").resolve()
    assert [Path(d).resolve() for d in out["dirs"]] == [extra.resolve(), (site / "changedetect" / "models").resolve()]
    assert {"vhr-building", "s2-urban"} <= set(out["names"])
    assert out["segmenter"] == "vhr-building-buildings"
    # the sha256 check holds in the installed copy, and says how an installed copy is repaired
    assert "sha256" in out["damaged"] and "reinstalling changedetect" in out["damaged"], out["damaged"]


def test_python_dash_m_changedetect_is_the_command() -> None:
    """``python -m changedetect`` (what a scheduler without the console script on its PATH runs)."""
    res = subprocess.run([sys.executable, "-m", "changedetect", "models"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert "vhr-building" in res.stdout and "s2-urban" in res.stdout
