"""The artifact: checksum, signature, library versions, format, atomic writes, the latest pointer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nids_common.errors import ArtifactError
from nids_model import artifact
from nids_model.artifact import load_model, write_artifact


def test_a_one_byte_change_is_refused(trained_model: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(trained_model, tmp_path / "v")
    blob = bytearray((copy / "model.joblib").read_bytes())
    blob[len(blob) // 2] ^= 0x01
    (copy / "model.joblib").write_bytes(bytes(blob))
    with pytest.raises(ArtifactError, match=r"sha256 .* does not match the manifest .*: refusing to load"):
        load_model(copy)


def test_signature_checked_when_key_set(trained_model: Path, tmp_path: Path) -> None:
    model, manifest = load_model(trained_model)
    keep = {
        k: v for k, v in manifest.items() if k not in ("version", "created", "libraries", "model_sha256", "model_file")
    }
    signed = write_artifact(tmp_path / "m", model, keep, env={"NIDS_MODEL_KEY": "k1"})
    load_model(signed, env={"NIDS_MODEL_KEY": "k1"})
    load_model(signed, env={})
    with pytest.raises(ArtifactError, match="HMAC signature does not verify"):
        load_model(signed, env={"NIDS_MODEL_KEY": "k2"})
    with pytest.raises(ArtifactError, match="is unsigned"):
        load_model(trained_model, env={"NIDS_MODEL_KEY": "k1"})


def test_the_secure_profile_loads_only_signed_models(trained_model: Path, tmp_path: Path) -> None:
    model, manifest = load_model(trained_model)
    keep = {
        k: v for k, v in manifest.items() if k not in ("version", "created", "libraries", "model_sha256", "model_file")
    }
    signed = write_artifact(tmp_path / "m", model, keep, env={"NIDS_MODEL_KEY": "k1"})
    with pytest.raises(ArtifactError, match="signed models are required but NIDS_MODEL_KEY is not set"):
        load_model(signed, env={}, require_signature=True)
    with pytest.raises(ArtifactError, match="is unsigned"):
        load_model(trained_model, env={"NIDS_MODEL_KEY": "k1"}, require_signature=True)
    loaded, _ = load_model(signed, env={"NIDS_MODEL_KEY": "k1"}, require_signature=True)
    assert loaded.classes == model.classes


def test_library_version_mismatch_refused(trained_model: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(trained_model, tmp_path / "v")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["libraries"]["sklearn"] = "0.24.2"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"built with scikit-learn 0\.24\.2"):
        load_model(copy)


def test_artifact_never_half_written(trained_model: Path, tmp_path: Path) -> None:
    model, _manifest = load_model(trained_model)

    def fail(_folder: Path) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_artifact(tmp_path / "models", model, {}, write_extras=fail)
    assert list((tmp_path / "models").iterdir()) == []


def test_latest_points_at_newest(trained_model: Path) -> None:
    models = trained_model.parent
    assert (models / "latest").resolve() == trained_model.resolve()
    manifest = artifact.read_manifest(models)
    for key in (
        "version",
        "created",
        "libraries",
        "features",
        "feature_dtypes",
        "category_vocabularies",
        "classes",
        "decision_threshold",
        "training_data",
        "validation_metrics",
        "model_sha256",
    ):
        assert key in manifest, key
    assert (trained_model / "report.md").read_text().count("![") >= 4
    for figure in ("correlation_heatmap.png", "rfe_curve.png", "mutual_information.png", "confusion_deployed.png"):
        assert (trained_model / "figures" / figure).stat().st_size > 1000


def test_an_artifact_of_the_old_layout_is_refused_with_retrain(trained_model: Path, tmp_path: Path) -> None:
    # Artifacts written before 0.2.0 carry no artifact_format and pickle training.* classes.
    copy = shutil.copytree(trained_model, tmp_path / "old")
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["artifact_format"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"artifact format 1, .* reads format 4: retrain the model with nids-train"):
        load_model(copy)
