"""The artifact: checksum, signature, library versions, format, the typed manifest, atomic writes, a
model file swapped after its check, the latest pointer."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import joblib
import msgspec
import numpy as np
import orjson
import pytest

from nids_common.errors import ArtifactError
from nids_model import artifact
from nids_model.artifact import ARTIFACT_FORMAT, MANIFEST_FILE, MODEL_FILE, load_model, write_artifact
from nids_model.canary import CANARY_FILE, canary_columns
from nids_model.seen_regime import SeenRegime, SeenVectors


def edit_manifest(folder: Path, change: Any) -> None:
    """Rewrite folder's manifest.json as `change(document)` leaves it."""
    document = json.loads((folder / MANIFEST_FILE).read_text())
    change(document)
    (folder / MANIFEST_FILE).write_text(json.dumps(document))


def test_a_one_byte_change_is_refused(trained_model: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(trained_model, tmp_path / "v")
    blob = bytearray((copy / "model.joblib").read_bytes())
    blob[len(blob) // 2] ^= 0x01
    (copy / "model.joblib").write_bytes(bytes(blob))
    with pytest.raises(ArtifactError, match=r"sha256 .* does not match the manifest .*: refusing to load"):
        load_model(copy)


def test_signature_checked_when_key_set(trained_model: Path, tmp_path: Path) -> None:
    model, manifest = load_model(trained_model)
    signed = write_artifact(tmp_path / "m", model, manifest.training_record(), env={"NIDS_MODEL_KEY": "k1"})
    assert artifact.read_manifest(signed).model_hmac_sha256
    assert "model_hmac_sha256" not in json.loads((trained_model / MANIFEST_FILE).read_text())
    load_model(signed, env={"NIDS_MODEL_KEY": "k1"})
    load_model(signed, env={})
    with pytest.raises(ArtifactError, match="HMAC signature does not verify"):
        load_model(signed, env={"NIDS_MODEL_KEY": "k2"})
    with pytest.raises(ArtifactError, match="is unsigned"):
        load_model(trained_model, env={"NIDS_MODEL_KEY": "k1"})


def test_the_secure_profile_loads_only_signed_models(trained_model: Path, tmp_path: Path) -> None:
    model, manifest = load_model(trained_model)
    signed = write_artifact(tmp_path / "m", model, manifest.training_record(), env={"NIDS_MODEL_KEY": "k1"})
    with pytest.raises(ArtifactError, match="signed models are required but NIDS_MODEL_KEY is not set"):
        load_model(signed, env={}, require_signature=True)
    with pytest.raises(ArtifactError, match="is unsigned"):
        load_model(trained_model, env={"NIDS_MODEL_KEY": "k1"}, require_signature=True)
    loaded, _ = load_model(signed, env={"NIDS_MODEL_KEY": "k1"}, require_signature=True)
    assert loaded.classes == model.classes


def test_library_version_mismatch_refused(trained_model: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(trained_model, tmp_path / "v")
    edit_manifest(copy, lambda document: document["libraries"].update(sklearn="0.24.2"))
    with pytest.raises(ArtifactError, match=r"built with scikit-learn 0\.24\.2"):
        load_model(copy)


def test_a_model_file_swapped_after_its_check_is_never_unpickled(
    trained_model: Path, second_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = shutil.copytree(trained_model, tmp_path / "v")
    verified, _ = load_model(trained_model)
    unpickle = joblib.load

    def swap_then_load(source: Any, *args: Any, **kwargs: Any) -> Any:
        # Someone who can write the folder swaps the checked file for another model just before it is read.
        shutil.copyfile(second_model / MODEL_FILE, copy / MODEL_FILE)
        return unpickle(source, *args, **kwargs)

    monkeypatch.setattr(joblib, "load", swap_then_load)
    loaded, _ = load_model(copy)
    assert (copy / MODEL_FILE).read_bytes() == (second_model / MODEL_FILE).read_bytes(), "the swap happened"
    flows = canary_columns(orjson.loads((copy / CANARY_FILE).read_bytes()))
    np.testing.assert_array_equal(loaded.score(flows).attack_probability, verified.score(flows).attack_probability)


def test_artifact_never_half_written(trained_model: Path, tmp_path: Path) -> None:
    model, manifest = load_model(trained_model)

    def fail(_folder: Path) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_artifact(tmp_path / "models", model, manifest.training_record(), write_extras=fail)
    assert list((tmp_path / "models").iterdir()) == []


def test_the_manifest_reads_back_as_written(trained_model: Path, tmp_path: Path) -> None:
    model, manifest = load_model(trained_model)
    record = manifest.training_record()
    copy = write_artifact(tmp_path / "m", model, record, version="v2")
    again = artifact.read_manifest(copy)
    assert again.training_record() == record
    assert (again.version, again.artifact_format, again.model_file) == ("v2", ARTIFACT_FORMAT, MODEL_FILE)


def test_latest_points_at_newest(trained_model: Path) -> None:
    models = trained_model.parent
    assert (models / "latest").resolve() == trained_model.resolve()
    manifest = artifact.read_manifest(models)
    assert manifest.version == trained_model.name
    assert manifest.features and set(manifest.feature_dtypes) == set(manifest.features)
    assert set(manifest.category_vocabularies) == {f for f, t in manifest.feature_dtypes.items() if t == "category"}
    assert "Normal" in manifest.classes and 0 < manifest.decision_threshold < 1
    assert manifest.reference_profile.numeric and manifest.training_data
    assert len(manifest.model_sha256) == 64
    assert (trained_model / "report.md").read_text().startswith(f"# Model {manifest.version} — training report")
    assert (trained_model / "report.md").read_text().count("![") >= 4
    for figure in ("correlation_heatmap.png", "rfe_curve.png", "mutual_information.png", "confusion_deployed.png"):
        assert (trained_model / "figures" / figure).stat().st_size > 1000


def test_an_artifact_of_the_old_layout_is_refused_with_retrain(trained_model: Path, tmp_path: Path) -> None:
    # Artifacts written before 0.2.0 carry no artifact_format and pickle training.* classes.
    copy = shutil.copytree(trained_model, tmp_path / "old")
    edit_manifest(copy, lambda document: document.pop("artifact_format"))
    with pytest.raises(
        ArtifactError, match=r"artifact format 1, .* reads formats 6, 7, 8 and 9: retrain the model with nids-train"
    ):
        load_model(copy)


def test_a_format_4_artifact_is_refused_with_retrain_before_its_fields_are_read(
    trained_model: Path, tmp_path: Path
) -> None:
    # Format 4 manifests were untyped: whatever fields they hold, the format alone refuses them.
    copy = shutil.copytree(trained_model, tmp_path / "v4")
    edit_manifest(copy, lambda document: document.update(artifact_format=4, no_such_field=True))
    with pytest.raises(
        ArtifactError, match=r"artifact format 4, this nids-stream reads formats 6, 7, 8 and 9: retrain"
    ):
        load_model(copy)


def table_before_held_out(vectors: SeenVectors) -> SeenVectors:
    """`vectors` as an artifact of formats 6 to 8 unpickles it: no `held_out` attribute."""
    old = SeenVectors.__new__(SeenVectors)
    old.__dict__.update({name: value for name, value in vars(vectors).items() if name != "held_out"})
    return old


def pickled_before_buckets(seen: SeenRegime) -> SeenRegime:
    """`seen` as a format 6 or 7 artifact unpickles it: one class scale, no `min_rows` attribute."""
    old = SeenRegime.__new__(SeenRegime)
    old.__dict__.update(
        vectors=table_before_held_out(seen.vectors),
        prior=seen.prior,
        class_scale=np.atleast_2d(seen.class_scale)[-1],
    )
    return old


@pytest.mark.parametrize("built_format", [6, 7])
def test_an_artifact_from_before_the_seen_buckets_is_still_read_and_decides_as_it_did(
    trained_model: Path, tmp_path: Path, built_format: int
) -> None:
    # Format 7 added a class (the averaged attack_cat model) and 8 the seen scales by training rows;
    # a format-6 or 7 pickle holds a seen regime with one scale, digested without buckets.
    model, manifest = load_model(trained_model)
    assert model.seen is not None and manifest.seen_regime is not None
    model.seen = pickled_before_buckets(model.seen)
    assert "min_rows" not in vars(model.seen)
    scale = {c: float(s) for c, s in zip(model.classes, model.seen.class_scale)}
    record = msgspec.structs.replace(manifest.seen_regime, sha256=model.seen.digest(), class_scale=scale, more_rows=())
    copy = write_artifact(
        tmp_path / "m", model, msgspec.structs.replace(manifest.training_record(), seen_regime=record)
    )

    def as_built_then(document: dict[str, Any]) -> None:
        document.update(artifact_format=built_format)
        del document["seen_regime"]["more_rows"]

    edit_manifest(copy, as_built_then)
    loaded, read = load_model(copy)
    assert read.artifact_format == built_format and read.seen_regime is not None
    assert read.seen_regime.more_rows == ()
    assert loaded.seen is not None and loaded.seen.min_rows == (1,)
    seen = np.arange(len(loaded.seen.vectors))
    np.testing.assert_array_equal(loaded.seen.scales(seen), np.tile(model.seen.class_scale, (len(seen), 1)))


def test_a_format_8_artifact_is_still_read_and_its_seen_rule_scales_the_models_probabilities(
    trained_model: Path, tmp_path: Path
) -> None:
    # Format 9 added each seen vector's held-out probabilities; a format-8 table has none, digests as
    # it did, and its rule keeps scaling what the model says.
    model, manifest = load_model(trained_model)
    assert model.seen is not None and model.seen.vectors.held_out is not None and manifest.seen_regime is not None
    model.seen = dataclasses.replace(model.seen, vectors=table_before_held_out(model.seen.vectors))
    record = msgspec.structs.replace(manifest.seen_regime, sha256=model.seen.digest(), bytes=model.seen.vectors.nbytes)
    copy = write_artifact(
        tmp_path / "m", model, msgspec.structs.replace(manifest.training_record(), seen_regime=record)
    )
    edit_manifest(copy, lambda document: document.update(artifact_format=8))
    loaded, read = load_model(copy)
    assert read.artifact_format == 8 and loaded.seen is not None and loaded.seen.vectors.held_out is None
    seen = np.arange(3)
    probabilities = np.random.default_rng(0).dirichlet(np.ones(len(model.classes)), size=3)
    scaled = probabilities * loaded.seen.scales(seen)
    expected = scaled / scaled.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(loaded.seen.class_probabilities(seen, probabilities), expected)


@pytest.mark.parametrize("min_rows", [(1, 5), (2, 5, 10, 20), (1, 5, 5, 10)])
def test_a_seen_rule_whose_scales_do_not_fit_its_buckets_is_refused(
    trained_model: Path, tmp_path: Path, min_rows: tuple[int, ...]
) -> None:
    model, manifest = load_model(trained_model)
    assert model.seen is not None and manifest.seen_regime is not None
    assert model.seen.bucket_scales.shape == (4, len(model.classes))
    model.seen = dataclasses.replace(model.seen, min_rows=min_rows)
    record = msgspec.structs.replace(manifest.seen_regime, sha256=model.seen.digest())
    copy = write_artifact(
        tmp_path / "m", model, msgspec.structs.replace(manifest.training_record(), seen_regime=record)
    )
    with pytest.raises(ArtifactError, match=r"seen rule's class scales \(4, 10\) do not fit its buckets .*refusing"):
        load_model(copy)


def test_a_seen_table_whose_held_out_probabilities_do_not_fit_is_refused(trained_model: Path, tmp_path: Path) -> None:
    model, manifest = load_model(trained_model)
    assert model.seen is not None and model.seen.vectors.held_out is not None and manifest.seen_regime is not None
    model.seen.vectors.held_out = model.seen.vectors.held_out[:, 1:]
    record = msgspec.structs.replace(manifest.seen_regime, sha256=model.seen.digest(), bytes=model.seen.vectors.nbytes)
    copy = write_artifact(
        tmp_path / "m", model, msgspec.structs.replace(manifest.training_record(), seen_regime=record)
    )
    with pytest.raises(ArtifactError, match=r"held-out probabilities \(\d+, 9\) do not fit its \d+ vectors and 10 "):
        load_model(copy)


def test_a_newer_artifact_says_to_upgrade(trained_model: Path, tmp_path: Path) -> None:
    newer = shutil.copytree(trained_model, tmp_path / "newer")
    edit_manifest(newer, lambda document: document.update(artifact_format=ARTIFACT_FORMAT + 1))
    with pytest.raises(
        ArtifactError, match=r"artifact format 10, .* reads formats 6, 7, 8 and 9: upgrade nids-stream, or retrain"
    ):
        load_model(newer)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda document: document.update(surprise=1), r"unknown field `surprise`"),
        (lambda document: document["rows"].update(train="many"), r"Expected `int`, got `str` - at `\$\.rows\.train`"),
        (lambda document: document.pop("reference_profile"), r"missing required field `reference_profile`"),
    ],
    ids=["unknown field", "wrong type", "missing field"],
)
def test_a_manifest_that_does_not_fit_is_refused_naming_the_field(
    trained_model: Path, tmp_path: Path, change: Any, reason: str
) -> None:
    copy = shutil.copytree(trained_model, tmp_path / "v")
    edit_manifest(copy, change)
    with pytest.raises(ArtifactError, match=rf"manifest\.json: .*{reason}.*: retrain the model with nids-train"):
        load_model(copy)


def test_a_seen_table_that_does_not_match_its_digest_is_refused(trained_model: Path, tmp_path: Path) -> None:
    model, manifest = load_model(trained_model)
    assert model.seen is not None and manifest.seen_regime is not None
    assert manifest.seen_regime.sha256 == model.seen.digest()
    assert manifest.seen_regime.vectors == len(model.seen.vectors) > 0
    model.seen.vectors.attacks[0] += 1  # one training count changed after training recorded the table
    copy = write_artifact(tmp_path / "m", model, manifest.training_record(), version="v2")
    with pytest.raises(ArtifactError, match=r"seen-vector table sha256 .* does not match the manifest .*refusing"):
        load_model(copy)
