"""nids-model: list, show, promote (verified, atomic), rollback as a stack."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nids_common.errors import EXIT_USAGE
from nids_model import artifact
from nids_model.artifact import promotion_stack
from training import model_cli


def latest(models: Path) -> str:
    return (models / "latest").resolve().name


def test_list_marks_latest_and_shows_validation_figures(model_store: tuple[Path, str, str], capsys) -> None:
    models, first, second = model_store
    assert model_cli.main(["--models", str(models), "list"]) == 0
    out = capsys.readouterr().out
    assert f"* {first}" in out and f"  {second}" in out and "macro-F1" in out
    assert " latest " not in out, "the latest link is not a version"
    assert len(out.strip().splitlines()) == 3
    manifest = artifact.read_manifest(models / first)
    row = next(line for line in out.splitlines() if line.startswith(f"* {first}")).split()
    assert float(row[2]) == pytest.approx(manifest.cross_validation.grouped.folds.attack_cat_macro_f1_mean, abs=1e-4)
    assert float(row[3]) == pytest.approx(manifest.cross_validation.plain.folds.attack_cat_macro_f1_mean, abs=1e-4)


def test_show_prints_the_manifest_without_the_canary_outputs(model_store: tuple[Path, str, str], capsys) -> None:
    models, first, _ = model_store
    assert model_cli.main(["--models", str(models), "show", first]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["version"] == first and "expected" not in shown["canary"]


def test_promote_then_rollback_twice_walks_back_the_promotions(
    model_store: tuple[Path, str, str], tmp_path: Path
) -> None:
    models, first, second = model_store
    third = second + "-copy"
    shutil.copytree(models / second, models / third)
    for version in (second, third):
        assert model_cli.main(["--models", str(models), "promote", version]) == 0
        assert latest(models) == version
    assert model_cli.main(["--models", str(models), "rollback"]) == 0
    assert latest(models) == second
    assert model_cli.main(["--models", str(models), "rollback"]) == 0
    assert latest(models) == first
    assert promotion_stack(models) == [first]
    assert model_cli.main(["--models", str(models), "rollback"]) == EXIT_USAGE


def test_a_version_that_fails_verification_is_not_promoted(model_store: tuple[Path, str, str], capsys) -> None:
    models, first, second = model_store
    blob = bytearray((models / second / "model.joblib").read_bytes())
    blob[len(blob) // 2] ^= 0x01
    (models / second / "model.joblib").write_bytes(bytes(blob))
    assert model_cli.main(["--models", str(models), "promote", second]) == EXIT_USAGE
    assert "does not match the manifest" in capsys.readouterr().err
    assert latest(models) == first


@pytest.mark.parametrize("version", ["nope", "..", "../models"])
def test_an_unknown_version_is_a_usage_error(model_store: tuple[Path, str, str], version: str, capsys) -> None:
    models, first, _ = model_store
    assert model_cli.main(["--models", str(models), "promote", version]) == EXIT_USAGE
    assert "no model version" in capsys.readouterr().err
    assert latest(models) == first


def test_rollback_passes_over_versions_that_no_longer_verify(model_store: tuple[Path, str, str], capsys) -> None:
    models, first, second = model_store
    assert model_cli.main(["--models", str(models), "promote", second]) == 0
    broken = second + "-broken"
    shutil.copytree(models / second, models / broken)
    assert model_cli.main(["--models", str(models), "promote", broken]) == 0
    (models / second / "canary.json").write_bytes(b"[]")  # the version before the current one breaks
    assert model_cli.main(["--models", str(models), "rollback"]) == 0
    assert latest(models) == first
    assert f"passing over {second}" in capsys.readouterr().err
    assert promotion_stack(models) == [first]


def test_list_names_a_version_of_an_older_format_and_lists_the_others(
    model_store: tuple[Path, str, str], capsys
) -> None:
    models, first, second = model_store
    manifest = json.loads((models / second / "manifest.json").read_text())
    manifest["artifact_format"] = 4
    (models / second / "manifest.json").write_text(json.dumps(manifest))
    assert model_cli.main(["--models", str(models), "list"]) == 0
    out = capsys.readouterr().out
    assert f"* {first}" in out
    assert f"  {second}" in out and "artifact format 4, this nids-stream reads formats 6, 7, 8 and 9: retrain" in out
