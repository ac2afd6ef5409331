"""report.md and its figures for a trained artifact; with --compare, the model comparison table too."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.analysis import FeatureAnalysis, plot_confusion, write_figures

TOP = 15


def write(
    folder: Path,
    analysis: FeatureAnalysis,
    candidates: Sequence[Any],
    pairs: Sequence[dict[str, Any]],
    chosen: dict[str, Any],
    measured_rows_per_second: float,
    manifest: dict[str, Any],
    compare: bool,
    searches: dict[str, Any],
    train: pd.DataFrame,
    val: pd.DataFrame,
) -> None:
    figures = folder / "figures"
    names = write_figures(analysis, figures)
    metrics = chosen["metrics"]
    deployed_cm = plot_confusion(
        _array(metrics["confusion_matrix"]),
        metrics["classes"],
        "Deployed model: attack_cat (validation)",
        figures / "confusion_deployed.png",
    )
    lines = [
        f"# Model {manifest.get('version', '(new)')} — training report",
        "",
        "## Data",
        "",
        f"- training rows: {len(train):,}; validation rows: {len(val):,}",
        f"- validation: {json.dumps(manifest['validation_data'])}",
        "- class counts (training split):",
        "",
        _table(train["attack_cat"].value_counts().rename_axis("attack_cat").reset_index(name="rows")),
        "",
        "## Deployed model",
        "",
        f"- label: {chosen['label'].name}, params `{json.dumps(chosen['label'].params)}`",
        f"- attack_cat: {chosen['attack_cat'].name}, params `{json.dumps(chosen['attack_cat'].params)}`",
        f"- alert rule: an attack when P(label=1) ≥ {manifest['decision_threshold']}; "
        "its attack_cat is the most probable non-Normal class of the attack_cat model; otherwise Normal",
        "- chosen by validation attack_cat macro-F1, then label accuracy, among pairs that score at least "
        "the configured rows/s even when every flow is an attack; "
        f"measured {measured_rows_per_second:,.0f} rows/s on validation traffic, "
        f"{manifest['worst_case_rows_per_second']:,.0f} rows/s worst case, "
        f"in batches of {manifest['throughput_batch_rows']:,}",
        f"- **validation: label accuracy {metrics['label_accuracy']:.4f}, "
        f"attack_cat macro-F1 {metrics['attack_cat_macro_f1']:.4f}, "
        f"attack_cat accuracy {metrics['attack_cat_accuracy']:.4f}**",
        "",
        _table(pd.DataFrame(metrics["per_class"]).T.rename_axis("class").reset_index(), floats=3),
        "",
        f"![confusion matrix](figures/{deployed_cm})",
        "",
        "### Candidate pairs",
        "",
        _table(
            pd.DataFrame(
                [
                    {
                        "label model": p["label"].name,
                        "attack_cat model": p["attack_cat"].name,
                        "label accuracy": p["metrics"]["label_accuracy"],
                        "attack_cat macro-F1": p["metrics"]["attack_cat_macro_f1"],
                        "worst-case rows/s": round(p["worst_case_rows_per_second"]),
                    }
                    for p in pairs
                ]
            ),
            floats=4,
        ),
        "",
        "### Candidate pipelines",
        "",
        _table(
            pd.DataFrame([_candidate_row(c) for c in candidates]),
            floats=4,
        ),
        "",
        "## Feature analysis (training split only)",
        "",
        "### Correlation with label and each attack_cat (Pearson r, one-vs-rest)",
        "",
        f"![correlation heatmap](figures/{names['correlation']})",
        "",
        _table(analysis.correlation.head(TOP).rename_axis("feature").reset_index(), floats=3),
        "",
        "Redundant pairs (|r| ≥ 0.95):",
        "",
        _table(analysis.redundant_pairs, floats=3) if len(analysis.redundant_pairs) else "none",
        "",
        "### Recursive feature elimination (RandomForest)",
        "",
        f"![RFE curve](figures/{names['rfe_curve']})",
        "",
        _table(analysis.rfe_curve, floats=4),
        "",
        _table(analysis.rfe_ranking.head(TOP).rename_axis("feature").reset_index()),
        "",
        "### Information gain (mutual information, nats)",
        "",
        f"![mutual information](figures/{names['mutual_information']})",
        "",
        _table(analysis.mutual_information.head(TOP).rename_axis("feature").reset_index(), floats=4),
        "",
        "### Selected features",
        "",
        f"{len(analysis.selected)} features: `{', '.join(analysis.selected)}` — {analysis.reason}.",
        "",
    ]
    if compare:
        lines += _comparison(folder, candidates, searches)
    (folder / "report.md").write_text("\n".join(lines) + "\n")


def _candidate_row(c: Any) -> dict[str, Any]:
    return {
        "model": c.name,
        "target": c.target,
        "accuracy": c.metrics["accuracy"],
        "macro-F1": c.metrics["macro_f1"],
        "fit s": round(c.fit_seconds, 1),
        "rows/s": round(c.rows_per_second),
    }


def _comparison(folder: Path, candidates: Sequence[Any], searches: dict[str, Any]) -> list[str]:
    rows = []
    figure_lines = []
    for c in candidates:
        row = _candidate_row(c)
        for cls, m in c.metrics["per_class"].items():
            row[f"{cls} P/R/F1"] = f"{m['precision']:.2f}/{m['recall']:.2f}/{m['f1']:.2f}"
        rows.append(row)
        name = f"confusion_{c.family}_{c.target}_{c.feature_set}.png"
        plot_confusion(
            _array(c.metrics["confusion_matrix"]),
            c.metrics["classes"],
            f"{c.name} — {c.target}",
            folder / "figures" / name,
        )
        figure_lines.append(f"- [{c.name}, {c.target}](figures/{name})")
    table = pd.DataFrame(rows)
    table.to_csv(folder / "comparison.csv", index=False)
    lines = [
        "## Model comparison (validation split)",
        "",
        "Each model tuned by a bounded random search scored on an inner hold-out of the training split.",
        "",
    ]
    for target in table["target"].unique():
        part = table[table["target"] == target].dropna(axis=1, how="all")
        lines += [f"### {target}", "", _table(part.drop(columns=["target"]), floats=4), ""]
    lines += ["Confusion matrices:", "", *figure_lines, "", "### Search trials", ""]
    for key, trials in searches.items():
        lines.append(f"- {key}: " + "; ".join(f"`{json.dumps(t['params'])}` → {t['score']:.4f}" for t in trials))
    return lines


def _array(matrix: Any) -> np.ndarray:
    return np.asarray(matrix)


def _table(frame: pd.DataFrame, floats: int | None = None) -> str:
    def cell(value: Any) -> str:
        if floats is not None and isinstance(value, float):
            return f"{value:.{floats}f}"
        return str(value)

    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])
