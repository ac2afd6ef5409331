"""The canary: an artifact's reference batch scores exactly as recorded, and any change is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nids_common.errors import ArtifactError
from nids_model.artifact import ARTIFACT_FORMAT, load_checked, load_model, read_manifest
from nids_model.canary import CANARY_FILE, check_canary


def test_a_trained_artifact_passes_its_own_canary(trained_model: Path) -> None:
    _model, manifest, folder = load_checked(trained_model)
    assert manifest.artifact_format == ARTIFACT_FORMAT
    assert manifest.canary.rows > 100 and (folder / manifest.canary.file) == folder / CANARY_FILE
    assert (folder / CANARY_FILE).is_file()
    assert len(manifest.canary.expected.attack_probability) == manifest.canary.rows
    assert set(manifest.canary.expected.attack_cat) >= {"Normal"}


def test_another_model_fails_this_canary(trained_model: Path, second_model: Path) -> None:
    other, _ = load_model(second_model)
    with pytest.raises(ArtifactError, match=r"canary row \d+ scores .* rows differ\): refusing the model"):
        check_canary(other, trained_model, read_manifest(trained_model).canary)


def test_a_changed_expectation_is_refused(trained_model: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(trained_model, tmp_path / "v")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["canary"]["expected"]["attack_probability"][3] += 1e-12
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="canary row 3 scores"):
        load_checked(copy)


def test_a_changed_canary_file_is_refused(trained_model: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(trained_model, tmp_path / "v")
    (copy / CANARY_FILE).write_bytes((copy / CANARY_FILE).read_bytes().replace(b"tcp", b"udp", 1))
    with pytest.raises(ArtifactError, match=r"canary\.json: sha256 does not match the manifest"):
        load_checked(copy)


def test_an_artifact_without_a_canary_is_refused(trained_model: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(trained_model, tmp_path / "v")
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["canary"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="missing required field `canary`: retrain the model with nids-train"):
        load_checked(copy)
