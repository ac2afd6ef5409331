"""The trained model: leakage, consistent verdicts, unseen categories, artifact verification, the CLIs."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nids_common.errors import ArtifactError, EXIT_USAGE
from nids_common.schema import NEVER_FEATURES, NORMAL
from tests.fixtures import flows_with_identity, write_partitioned
from training import artifact, cli, score
from training.artifact import load_model, write_artifact


@pytest.fixture(scope="module")
def scored_flows() -> pd.DataFrame:
    return flows_with_identity(600, seed=21)


def test_never_features_do_not_change_any_prediction(trained_model: Path, scored_flows: pd.DataFrame) -> None:
    model, _ = load_model(trained_model)
    baseline = model.score(scored_flows)
    rng = np.random.default_rng(0)
    changed = scored_flows.copy()
    for column in NEVER_FEATURES:
        if column in changed.columns and column != "attack_cat":
            changed[column] = rng.permutation(changed[column].to_numpy())
    changed["attack_cat"] = "Worms"
    changed["label"] = 1 - changed["label"]
    changed["srcip"] = "10.0.0.1"
    after = model.score(changed)
    np.testing.assert_array_equal(baseline.attack_probability, after.attack_probability)
    np.testing.assert_array_equal(baseline.attack_cat, after.attack_cat)
    assert set(NEVER_FEATURES).isdisjoint(json.loads((trained_model / "manifest.json").read_text())["features"])


def test_verdicts_are_consistent(trained_model: Path, scored_flows: pd.DataFrame) -> None:
    model, _ = load_model(trained_model)
    scores = model.score(scored_flows)
    assert scores.is_attack.any() and (~scores.is_attack).any()
    np.testing.assert_array_equal(scores.is_attack, scores.attack_cat != NORMAL)
    assert np.isnan(scores.class_probabilities[~scores.is_attack]).all()
    np.testing.assert_allclose(scores.class_probabilities[scores.is_attack].sum(axis=1), 1.0, rtol=1e-6)


def test_model_learns_synthetic_classes(trained_model: Path, scored_flows: pd.DataFrame) -> None:
    model, manifest = load_model(trained_model)
    scores = model.score(scored_flows)
    assert (scores.is_attack.astype(int) == scored_flows["label"].to_numpy()).mean() > 0.85
    assert manifest["validation_metrics"]["label_accuracy"] > 0.85


def test_unseen_categories_are_scored(trained_model: Path, scored_flows: pd.DataFrame) -> None:
    model, _ = load_model(trained_model)
    odd = scored_flows.head(20).copy()
    odd["proto"], odd["service"], odd["state"] = "quic-new", "gopher", "ZZZ"
    scores = model.score(odd)
    assert len(scores.attack_cat) == 20


def test_a_one_byte_change_is_refused(trained_model: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(trained_model, tmp_path / "v")
    blob = bytearray((copy / "model.joblib").read_bytes())
    blob[len(blob) // 2] ^= 0x01
    (copy / "model.joblib").write_bytes(bytes(blob))
    with pytest.raises(ArtifactError, match=r"sha256 .* does not match the manifest .*: refusing to load"):
        load_model(copy)


def test_signature_checked_when_key_set(trained_model: Path, tmp_path: Path) -> None:
    model, manifest = load_model(trained_model)
    keep = {k: v for k, v in manifest.items() if k not in ("version", "created", "libraries", "model_sha256", "model_file")}
    signed = write_artifact(tmp_path / "m", model, keep, env={"NIDS_MODEL_KEY": "k1"})
    load_model(signed, env={"NIDS_MODEL_KEY": "k1"})
    load_model(signed, env={})
    with pytest.raises(ArtifactError, match="HMAC signature does not verify"):
        load_model(signed, env={"NIDS_MODEL_KEY": "k2"})
    with pytest.raises(ArtifactError, match="is unsigned"):
        load_model(trained_model, env={"NIDS_MODEL_KEY": "k1"})


def test_library_version_mismatch_refused(trained_model: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(trained_model, tmp_path / "v")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["libraries"]["sklearn"] = "0.24.2"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="built with scikit-learn 0.24.2"):
        load_model(copy)


def test_artifact_never_half_written(trained_model: Path, tmp_path: Path) -> None:
    model, manifest = load_model(trained_model)

    def fail(_folder: Path) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_artifact(tmp_path / "models", model, {}, write_extras=fail)
    assert list((tmp_path / "models").iterdir()) == []


def test_latest_points_at_newest(trained_model: Path) -> None:
    models = trained_model.parent
    assert (models / "latest").resolve() == trained_model.resolve()
    manifest = artifact.read_manifest(models)
    for key in ("version", "created", "libraries", "features", "feature_dtypes", "category_vocabularies", "classes",
                "decision_threshold", "training_data", "validation_metrics", "model_sha256"):
        assert key in manifest, key
    assert (trained_model / "report.md").read_text().count("![") >= 4
    for figure in ("correlation_heatmap.png", "rfe_curve.png", "mutual_information.png", "confusion_deployed.png"):
        assert (trained_model / "figures" / figure).stat().st_size > 1000


def test_score_cli_reproduces_training_validation_metrics(trained_model: Path, tmp_path: Path, capsys) -> None:
    manifest = artifact.read_manifest(trained_model)
    data = manifest["training_data"][0]["path"]
    out = tmp_path / "scored.csv"
    assert score.main(["--model", str(trained_model), "--input", data, "--output", str(out), "--validation-split"]) == 0
    printed = capsys.readouterr().out
    metrics = manifest["validation_metrics"]
    assert f"label accuracy {metrics['label_accuracy']:.4f}" in printed
    assert f"attack_cat macro-F1 {metrics['attack_cat_macro_f1']:.4f}" in printed
    scored = pd.read_csv(out)
    assert {"pred_label", "pred_attack_cat", "attack_probability", "id", "sbytes"} <= set(scored.columns)


def test_score_cli_chunks_whole_file(trained_model: Path, tmp_path: Path) -> None:
    data = write_partitioned(flows_with_identity(250, seed=8), tmp_path / "in.csv")
    out = tmp_path / "scored.csv"
    assert score.main(["--model", str(trained_model), "--input", str(data), "--output", str(out), "--chunk-rows", "60"]) == 0
    scored = pd.read_csv(out)
    assert len(scored) == 250
    model, _ = load_model(trained_model)
    whole = model.score(pd.read_csv(data).assign(proto=lambda f: f["proto"].str.lower()))
    np.testing.assert_array_equal(scored["pred_attack_cat"].to_numpy(), whole.attack_cat)


def test_train_cli_bad_input_exit_2_and_nothing_written(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n")
    models = tmp_path / "models"
    assert cli.main(["--data", str(bad), "--out", str(models)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "bad.csv: unknown format" in err and err.count("\n") == 1
    assert not models.exists() or list(models.iterdir()) == []


def test_train_cli_end_to_end(tmp_path: Path, capsys) -> None:
    data = write_partitioned(flows_with_identity(1500, seed=9), tmp_path / "d.csv")
    config = tmp_path / "training.yaml"
    config.write_text("deploy_candidates: [rf]\nmin_rows_per_second: 1\nanalysis_rows: 800\nrfe_feature_counts: [10]\n"
                      "throughput_batch_rows: 300\n")
    assert cli.main(["--data", str(data), "--out", str(tmp_path / "models"), "--config", str(config)]) == 0
    assert "label accuracy" in capsys.readouterr().out
    assert (tmp_path / "models" / "latest" / "model.joblib").is_file()


def test_score_cli_refuses_missing_model(tmp_path: Path, capsys) -> None:
    assert score.main(["--model", str(tmp_path), "--input", "x.csv", "--output", "y.csv"]) == EXIT_USAGE
    assert "no model here" in capsys.readouterr().err


def test_stream_categories_normalised_like_training(trained_model: Path, scored_flows: pd.DataFrame) -> None:
    # Training cleans 'INT' to 'int'; a producer that sends the partitioned files' spelling must score the same.
    model, _ = load_model(trained_model)
    shouted = scored_flows.assign(state=scored_flows["state"].str.upper(), proto=" " + scored_flows["proto"].str.upper())
    np.testing.assert_array_equal(model.score(shouted).attack_probability, model.score(scored_flows).attack_probability)


def test_train_if_missing_keeps_an_existing_model(trained_model: Path, capsys) -> None:
    models = trained_model.parent
    before = sorted(p.name for p in models.iterdir())
    assert cli.main(["--if-missing", "--out", str(models)]) == 0
    assert sorted(p.name for p in models.iterdir()) == before
