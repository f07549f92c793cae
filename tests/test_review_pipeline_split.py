"""Review of ``pipeline.run`` / ``changedetect run`` when the run fails before its work, and of the
pipeline / match split.

Each defect test failed on the code before its fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from changedetect.config import PipelineConfig
from changedetect.errors import ConfigError, ModelError, RegisterReadError
from changedetect.testing import make_footprints, make_model, make_permits, make_stack, write_stack


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("failed_runs")
    stack = make_stack(n_dates=2, size=64, seed=5)
    write_stack(stack, root / "tiles", prefix="ward7")
    make_permits(make_footprints(stack).iloc[:1]).to_file(root / "permits.gpkg")
    model = make_model(root / "tiny")
    corrupt = make_model(root / "corrupt")
    (corrupt / "weights.pt").write_bytes(b"not a torch file")  # its card's sha256 no longer matches
    return {"tiles": root / "tiles", "permits": root / "permits.gpkg", "model": model, "corrupt": corrupt}


def _tree(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` (hidden ones included) with a file's bytes (None: a folder)."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in folder.rglob("*")}


def _exit(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit status and stderr of ``changedetect ARGV`` (as tests/test_cli_errors.py runs it)."""
    from test_cli_errors import _exit as exit_of

    return exit_of(argv, capsys)


@pytest.mark.parametrize("which", ["missing", "corrupt"])
def test_library_run_with_a_bad_model_leaves_no_new_folder(inputs: dict[str, Path], tmp_path: Path,
                                                           which: str) -> None:
    """``run(out='results/2025/ward7')`` with a model that cannot be loaded made 'results' and
    'results/2025' (mkdir parents=True) and removed only 'ward7'."""
    from changedetect.pipeline import run

    model = str(tmp_path / "nonexistent") if which == "missing" else str(inputs["corrupt"])
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ModelError):
        run(inputs["tiles"], permits=inputs["permits"], out=work / "results" / "2025" / "ward7",
            config=PipelineConfig().with_model(model))
    assert _tree(work) == {}


def test_library_run_with_a_bad_register_leaves_no_new_folder(inputs: dict[str, Path], tmp_path: Path) -> None:
    from changedetect.pipeline import run

    with pytest.raises(RegisterReadError, match="no-such-register"):
        run(inputs["tiles"], permits=tmp_path / "no-such-register.gpkg", out=tmp_path / "results" / "ward7",
            config=PipelineConfig().with_model(str(inputs["model"])))
    assert _tree(tmp_path) == {}


@pytest.mark.parametrize("which", ["missing", "corrupt"])
def test_cli_run_with_a_bad_model_leaves_no_new_folder(inputs: dict[str, Path], tmp_path: Path, which: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The command's write check made the parent of --out (and its parents), which the failed run left."""
    model = str(tmp_path / "nonexistent") if which == "missing" else str(inputs["corrupt"])
    work = tmp_path / "work"
    work.mkdir()
    code, err = _exit(["-q", "run", str(inputs["tiles"]), "--permits", str(inputs["permits"]),
                       "--out", str(work / "results" / "2025" / "ward7"), "--model", model], capsys)
    assert code == 2 and err.count("Error: ") == 1, err
    assert _tree(work) == {}


def test_cli_run_with_a_bad_register_leaves_no_new_folder(inputs: dict[str, Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "work"
    work.mkdir()
    code, err = _exit(["-q", "run", str(inputs["tiles"]), "--permits", str(tmp_path / "no-such-register.gpkg"),
                       "--out", str(work / "results" / "ward7"), "--model", str(inputs["model"])], capsys)
    assert code == 2 and "no-such-register" in err, err
    assert _tree(work) == {}


def test_cli_run_with_a_bad_config_leaves_no_new_folder(inputs: dict[str, Path], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text("[detect]\nwindow = -3\n", encoding="utf-8")
    with pytest.raises(ConfigError):  # the same file, read by the library
        PipelineConfig.from_toml(toml)
    work = tmp_path / "work"
    work.mkdir()
    code, err = _exit(["-q", "run", str(inputs["tiles"]), "--permits", str(inputs["permits"]),
                       "--out", str(work / "results" / "ward7"), "--config", str(toml)], capsys)
    assert code == 2 and str(toml) in err, err
    assert _tree(work) == {}


@pytest.mark.parametrize("entry", ["library", "cli"])
def test_a_failed_run_leaves_an_existing_out_as_it_was(inputs: dict[str, Path], tmp_path: Path, entry: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """An OUT that held an earlier run (and an empty subfolder of the user's) is left byte for byte."""
    from changedetect.pipeline import run

    out = tmp_path / "out"
    (out / "notes").mkdir(parents=True)
    (out / "run.json").write_text('{"earlier": true}', encoding="utf-8")
    (out / "violations.gpkg").write_bytes(b"an earlier run's")
    before = _tree(out)
    if entry == "library":
        with pytest.raises(ModelError):
            run(inputs["tiles"], permits=inputs["permits"], out=out, overwrite=True,
                config=PipelineConfig().with_model(str(inputs["corrupt"])))
    else:
        code, err = _exit(["-q", "run", str(inputs["tiles"]), "--permits", str(inputs["permits"]),
                           "--out", str(out), "--model", str(inputs["corrupt"]), "--overwrite"], capsys)
        assert code == 2, err
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_pipeline_names_still_import_from_pipeline() -> None:
    """The split moved the output folder's rules and the stages into private modules; what callers
    import from changedetect.pipeline is the same object."""
    from changedetect import _pipeline_chain, _pipeline_output, pipeline

    assert pipeline.OUTPUTS is _pipeline_output.OUTPUTS and pipeline.REJECTS == "permit_rejects.gpkg"
    assert pipeline.check_out is _pipeline_output.check_out
    assert pipeline.removing_new_folders is _pipeline_output.removing_new_folders
    assert pipeline.STAGES is _pipeline_chain.STAGES
    assert callable(pipeline._load_previous) and pipeline.RunSummary.__module__ == "changedetect.pipeline"
    assert set(pipeline.__all__) == {"OUTPUTS", "STAGES", "RunSummary", "check_out", "run"}


def test_match_names_still_import_from_match() -> None:
    """The split moved the inputs (working CRS, candidates) and the output frame into private modules;
    match's public names and its named steps are still there."""
    from changedetect import _match_frame, _match_inputs, match

    assert match.MAX_AREA_DISTORTION == _match_inputs.MAX_AREA_DISTORTION == 0.02
    assert match._harmonise_crs is _match_inputs.harmonise_crs and match._frame is _match_frame.frame
    assert match._candidate_pairs is _match_inputs.candidate_pairs
    assert set(match.__all__) == {"COLUMNS", "STATUSES", "MatchConfig", "agreement", "match", "match_to_file"}
    assert all(hasattr(match, name) for name in match.__all__)
