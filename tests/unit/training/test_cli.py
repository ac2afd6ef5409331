"""nids-train and nids-score: end to end, bad input, the validation split re-derived."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nids_common.errors import EXIT_USAGE
from nids_model import artifact
from nids_model.artifact import load_model
from tests.fixtures import flows_with_identity, write_partitioned
from training import cli, score


@pytest.fixture(scope="module")
def scored_flows() -> pd.DataFrame:
    return flows_with_identity(600, seed=21)


def test_score_cli_reproduces_training_validation_metrics(trained_model: Path, tmp_path: Path, capsys) -> None:
    manifest = artifact.read_manifest(trained_model)
    assert isinstance(manifest.training_data, tuple)
    data = manifest.training_data[0].path
    out = tmp_path / "scored.csv"
    assert score.main(["--model", str(trained_model), "--input", data, "--output", str(out), "--validation-split"]) == 0
    printed = capsys.readouterr().out
    metrics = manifest.validation_metrics
    assert f"label accuracy {metrics.label_accuracy:.4f}" in printed
    assert f"attack_cat macro-F1 {metrics.attack_cat_macro_f1:.4f}" in printed
    scored = pd.read_csv(out)
    assert {"pred_label", "pred_attack_cat", "attack_probability", "id", "sbytes"} <= set(scored.columns)


def test_score_cli_chunks_whole_file(trained_model: Path, tmp_path: Path) -> None:
    data = write_partitioned(flows_with_identity(250, seed=8), tmp_path / "in.csv")
    out = tmp_path / "scored.csv"
    assert (
        score.main(["--model", str(trained_model), "--input", str(data), "--output", str(out), "--chunk-rows", "60"])
        == 0
    )
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
    config.write_text(
        "deploy_candidates: [rf]\nmin_rows_per_second: 1\nanalysis_rows: 800\nrfe_feature_counts: [10]\n"
        "throughput_batch_rows: 300\n"
    )
    assert cli.main(["--data", str(data), "--out", str(tmp_path / "models"), "--config", str(config)]) == 0
    assert "label accuracy" in capsys.readouterr().out
    assert (tmp_path / "models" / "latest" / "model.joblib").is_file()


def test_score_cli_refuses_missing_model(tmp_path: Path, capsys) -> None:
    assert score.main(["--model", str(tmp_path), "--input", "x.csv", "--output", "y.csv"]) == EXIT_USAGE
    assert "no model here" in capsys.readouterr().err


def test_train_if_missing_keeps_an_existing_model(trained_model: Path, capsys) -> None:
    models = trained_model.parent
    before = sorted(p.name for p in models.iterdir())
    assert cli.main(["--if-missing", "--out", str(models)]) == 0
    assert sorted(p.name for p in models.iterdir()) == before
