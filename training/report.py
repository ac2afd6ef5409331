"""report.md and its figures for a trained artifact; with --compare, the model comparison table too."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pandas as pd

from nids_common.schema import ATTACK_CAT, LABEL
from nids_model.folds import flow_groups
from nids_model.manifest import (
    BucketScale,
    ClassMetrics,
    CrossValidation,
    OperatingPoint,
    Rates,
    RegimeScores,
    SplitRecipe,
    TrainingRecord,
    ValidationMetrics,
)
from training.analysis import FeatureAnalysis, plot_confusion, plot_operating_point, write_figures
from training.candidates import Candidate, Pair, Trial
from training.evaluation import Evaluation

TOP = 15


@dataclasses.dataclass(frozen=True, eq=False)
class Inputs:
    version: str
    analysis: FeatureAnalysis
    candidates: Sequence[Candidate]
    pairs: Sequence[Pair]
    chosen: Pair
    validation: Evaluation  # the deployed model at its threshold
    validation_by_regime: Mapping[str, Evaluation]  # "seen", "novel" → those validation rows' figures
    attack_probability: np.ndarray  # validation rows, P(label = 1) from the deployed label pipeline
    manifest: TrainingRecord
    compare: bool


def write(
    folder: Path, inputs: Inputs, searches: Mapping[str, Sequence[Trial]], train: pd.DataFrame, val: pd.DataFrame
) -> None:
    analysis, candidates, pairs, chosen, manifest = (
        inputs.analysis,
        inputs.candidates,
        inputs.pairs,
        inputs.chosen,
        inputs.manifest,
    )
    figures = folder / "figures"
    names = write_figures(analysis, figures)
    names.update(
        plot_operating_point(
            val[LABEL].to_numpy(),
            inputs.attack_probability,
            msgspec.structs.asdict(manifest.operating_point.validation),
            figures,
        )
    )
    flows = pd.concat([train, val], ignore_index=True)
    shared, conflicting_groups = shared_vectors(flows)
    metrics = inputs.validation.metrics
    deployed_cm = plot_confusion(
        _array(inputs.validation.confusion_matrix),
        metrics.classes,
        "Deployed model: attack_cat (validation)",
        figures / "confusion_deployed.png",
    )
    lines = [
        f"# Model {inputs.version} — training report",
        "",
        "## Data",
        "",
        f"- training rows: {len(train):,}; validation rows: {len(val):,}",
        f"- validation: {json.dumps(msgspec.to_builtins(manifest.validation_data))}",
        "- class counts (training split):",
        "",
        _table(train["attack_cat"].value_counts().rename_axis("attack_cat").reset_index(name="rows")),
        "",
        "## Deployed model",
        "",
        f"- label: {chosen.label.name}, params `{json.dumps(chosen.label.params)}`",
        f"- attack_cat: {chosen.attack_cat.name}, params `{json.dumps(chosen.attack_cat.params)}`",
        f"- alert rule: an attack when P(label=1) ≥ {manifest.decision_threshold}; "
        "its attack_cat is the most probable non-Normal class of the attack_cat model; otherwise Normal",
        "- chosen by held-out scores on grouped folds of the training rows (attack_cat macro-F1 over attack "
        "rows, then label accuracy), never by the validation split, among pairs that score at least "
        "the configured rows/s even when every flow is an attack; "
        f"measured {manifest.rows_per_second:,.0f} rows/s on validation traffic, "
        f"{manifest.worst_case_rows_per_second:,.0f} rows/s worst case, "
        f"in batches of {manifest.throughput_batch_rows:,}",
        *_seen_rule(manifest),
        "",
        *_cross_validated(manifest.cross_validation, len(flows), shared, conflicting_groups),
        "### One validation split (a detail)",
        "",
        f"- {_split_kind(manifest)}: label accuracy {metrics.label_accuracy:.4f}, "
        f"attack_cat macro-F1 {metrics.attack_cat_macro_f1:.4f}, "
        f"attack_cat accuracy {metrics.attack_cat_accuracy:.4f}",
        *validation_regimes(inputs.validation_by_regime, isinstance(manifest.validation_data, SplitRecipe)),
        "",
        per_class_table(metrics),
        "",
        f"![confusion matrix](figures/{deployed_cm})",
        "",
        *_operating_point(manifest.operating_point, names),
        "### Candidate pairs",
        "",
        _table(
            pd.DataFrame(
                [
                    {
                        "label model": p.label.name,
                        "attack_cat model": p.attack_cat.name,
                        "label accuracy": p.metrics.label_accuracy,
                        "attack_cat macro-F1": p.metrics.attack_cat_macro_f1,
                        "worst-case rows/s": round(p.worst_case_rows_per_second),
                    }
                    for p in pairs
                ]
            ),
            floats=4,
        ),
        "",
        "### Candidate pipelines",
        "",
        candidate_table(pd.DataFrame([_candidate_row(c) for c in candidates])),
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
    if inputs.compare:
        lines += _comparison(folder, candidates, searches)
    (folder / "report.md").write_text("\n".join(lines) + "\n")


def shared_vectors(flows: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Per class: its rows, the share repeating an earlier feature vector, the share whose vector also
    occurs with another class, and the class it shares vectors with most; and how many groups of
    identical vectors carry more than one class."""
    table = pd.DataFrame({"group": flow_groups(flows), "cls": flows[ATTACK_CAT].astype(str).to_numpy()})
    repeated = table.duplicated("group")
    classes_of_group = table.groupby("group")["cls"].nunique()
    conflicting = table["group"].map(classes_of_group).to_numpy() > 1
    rows = []
    for cls, part in table.groupby("cls"):
        mask = (table["cls"] == cls).to_numpy()
        others = table[table["group"].isin(part["group"][conflicting[mask]]) & ~mask]["cls"]
        rows.append(
            {
                "class": cls,
                "rows": int(mask.sum()),
                "repeats": float(repeated[mask].mean()),
                "shares a vector with another class": float(conflicting[mask].mean()),
                "mostly with": others.value_counts().index[0] if len(others) else "",
            }
        )
    return pd.DataFrame(rows).set_index("class"), int((classes_of_group > 1).sum())


def validation_regimes(by_regime: Mapping[str, Evaluation], grouped_split: bool) -> list[str]:
    """Which regime decided the validation rows, and each regime's figures (report lines); `grouped_split`:
    the rows are training's own grouped hold-out."""
    seen, novel = (by_regime[name].metrics.rows if name in by_regime else 0 for name in ("seen", "novel"))
    why_none = " (the grouped split keeps every full feature vector on one side)" if grouped_split and not seen else ""
    table = pd.DataFrame(
        [
            {
                "regime": name,
                "rows": evaluation.metrics.rows,
                "label accuracy": evaluation.metrics.label_accuracy,
                "attack_cat macro-F1": evaluation.metrics.attack_cat_macro_f1,
            }
            for name, evaluation in by_regime.items()
        ]
    )
    return [
        f"- its rows by regime: {seen:,} seen ({seen / max(seen + novel, 1):.1%}: training held their exact "
        f"vector, so the seen regime decided them), {novel:,} novel{why_none}."
        + (
            " Each regime's macro-F1 averages the classes present in its own rows, so the two do not compare."
            if seen and novel
            else ""
        ),
        "",
        _table(table, floats=4),
        "",
        "Per class, all validation rows:",
    ]


def per_class_table(metrics: ValidationMetrics) -> str:
    """The validation split's classes × precision, recall, f1, support as a Markdown table (each column
    keeps its field's type, so support prints as a count)."""
    frame = pd.DataFrame.from_dict(
        {cls: msgspec.structs.asdict(m) for cls, m in metrics.per_class.items()}, orient="index"
    )
    return _table(frame.rename_axis("class").reset_index(), floats=3)


def _split_kind(manifest: TrainingRecord) -> str:
    if isinstance(manifest.validation_data, SplitRecipe):
        return f"grouped {manifest.validation_data.fraction:.0%} hold-out, seed {manifest.validation_data.seed}"
    return "the --test files"


def _seen_rule(manifest: TrainingRecord) -> list[str]:
    seen = manifest.seen_regime
    if seen is None:
        return ["- every flow is decided as novel (no seen regime)"]
    buckets = [BucketScale(min_rows=1, class_scale=seen.class_scale), *seen.more_rows]
    scales = []
    for bucket, following in zip(buckets, [*buckets[1:], None]):
        changed = ", ".join(f"{cls} {scale:g}" for cls, scale in bucket.class_scale.items() if scale != 1.0)
        next_first = None if following is None else following.min_rows
        scales.append(f"{bucket_label(bucket.min_rows, next_first)}: {changed or 'none'}")
    source = (
        "the vector's held-out class probabilities (predicted by a model that never trained on it, on grouped folds)"
        if seen.held_out
        else "the model's class probabilities (the held-out folds split some vectors)"
    )
    return [
        f"- seen regime: {seen.vectors:,} distinct training vectors ({seen.bytes / 1e6:.1f} MB in the artifact, "
        f"sha256 {seen.sha256[:12]}…); a flow whose exact vector training held gets P(attack) = "
        f"(the vector's attack rows + {seen.prior:g}·p) / (its rows + {seen.prior:g}) and its attack class "
        f"from {source} times the class scales of its vector's number of training rows (tuned on plain "
        f"folds): " + "; ".join(scales),
    ]


def bucket_label(first: int, next_first: int | None) -> str:
    """'1 row', '2–4 rows', '10+ rows': the training rows of the vectors in a bucket of the seen rule."""
    if next_first is None:
        return f"{first}+ rows"
    if next_first == first + 1:
        return f"{first} row" if first == 1 else f"{first} rows"
    return f"{first}–{next_first - 1} rows"


def _mean_std(scores: RegimeScores) -> tuple[str, str]:
    folds = scores.folds
    if not folds.rows:
        return "—", "—"
    return (
        f"{folds.label_accuracy_mean:.4f} ± {folds.label_accuracy_std:.4f}",
        f"{folds.attack_cat_macro_f1_mean:.4f} ± {folds.attack_cat_macro_f1_std:.4f}",
    )


def _cross_validated(cv: CrossValidation, rows: int, shared: pd.DataFrame, conflicting_groups: int) -> list[str]:
    """The headline: grouped folds for novel vectors, plain folds for random rows and each regime in them."""
    kinds = {
        "grouped (novel vectors only)": cv.grouped,
        "plain (random rows, as live traffic)": cv.plain,
        f"plain, seen rows ({cv.seen_share:.0%})": cv.plain_seen,
        f"plain, novel rows ({1 - cv.seen_share:.0%})": cv.plain_novel,
        "plain, every row decided as novel": cv.plain_without_seen_rule,
        "plain, seen rows decided as novel": cv.plain_seen_without_seen_rule,
    }
    summary = pd.DataFrame(
        [
            {"folds": name, "rows": scores.folds.rows, "label accuracy": a, "attack_cat macro-F1": f}
            for name, scores in kinds.items()
            for a, f in [_mean_std(scores)]
        ]
    )
    regimes = {"grouped": cv.grouped, "plain seen": cv.plain_seen, "plain novel": cv.plain_novel, "plain all": cv.plain}
    per_class = pd.DataFrame(
        {
            f"{name} {measure}": {c: getattr(m, measure) for c, m in scores.per_class.items()}
            for name, scores in regimes.items()
            for measure in ("precision", "recall")
        }
    ).join(shared[["repeats", "shares a vector with another class", "mostly with"]])
    return [
        f"- **cross-validated ({cv.folds} folds, mean ± standard deviation over folds)**",
        "",
        _table(summary, floats=4),
        "",
        f"{shared['repeats'].mul(shared['rows']).sum() / rows:.0%} of the rows repeat an earlier feature "
        f"vector, and {conflicting_groups:,} groups of identical vectors carry more than one attack_cat. Grouped "
        "folds keep identical vectors on one side, so every held-out row is novel: the figure to expect on "
        "traffic unlike the training data. Plain folds are random rows, as live traffic repeats floods and "
        f"scans: {cv.seen_share:.0%} of their held-out rows have a vector the fold's training rows held, and the "
        f"seen regime decides those. Method: {cv.method}.",
        "",
        "Per class over all folds' rows (precision and recall in each regime):",
        "",
        _table(per_class.rename_axis("class").reset_index(), floats=3).replace("| nan ", "| — "),
        "",
        *_low_precision(cv.plain.per_class, "plain folds (random rows)", shared),
        *_low_precision(cv.grouped.per_class, "grouped folds (novel vectors)", shared),
    ]


def _operating_point(point: OperatingPoint, names: dict[str, str]) -> list[str]:
    def describe(rates: Rates) -> str:
        return (
            f"false-positive rate {rates.false_positive_rate:.4f} of {rates.normal_flows:,} Normal flows, "
            f"recall {rates.recall:.4f} of {rates.attack_flows:,} attacks, precision {rates.precision:.4f}"
        )

    if point.max_false_positive_rate is None:
        rule = "the configured decision_threshold (no false-positive budget set)"
    else:
        rule = (
            f"the lowest threshold calling at most {point.max_false_positive_rate} of Normal flows attacks, "
            f"chosen on {point.expected_from}"
        )
    lines = [
        "### Operating point",
        "",
        f"- threshold **{point.threshold:.4f}**: {rule}",
    ]
    if point.expected is not None:
        lines.append(f"- expected (out-of-fold, training rows): {describe(point.expected)}")
    return [
        *lines,
        f"- on the validation split: {describe(point.validation)}",
        "",
        f"![ROC curve](figures/{names['roc']}) ![precision-recall curve](figures/{names['precision_recall']})",
        "",
    ]


def _low_precision(per_class: Mapping[str, ClassMetrics], where: str, shared: pd.DataFrame) -> list[str]:
    """Classes whose precision is below a third of their recall, with the reason the data gives."""
    lines = []
    for cls, m in per_class.items():
        if m.support and m.precision < m.recall / 3:
            reason = (
                f"{shared.loc[cls, 'shares a vector with another class']:.0%} of its rows share their exact "
                f"feature vector with another class, mostly {shared.loc[cls, 'mostly with']}, and "
                f"{shared.loc[cls, 'repeats']:.0%} repeat an earlier vector, so no model can tell those rows "
                "apart; its class scale trades precision for the recall that macro-F1 rewards"
                if cls in shared.index
                else "no duplicate statistics for this class"
            )
            lines.append(f"- {cls}: precision {m.precision:.3f} at recall {m.recall:.3f}: {reason}.")
    if not lines:
        return [f"On {where}, no class has a precision below a third of its recall.", ""]
    return [f"Classes with precision below a third of their recall on {where}:", "", *lines, ""]


def _candidate_row(c: Candidate) -> dict[str, Any]:
    return {
        "model": c.name,
        "target": c.target,
        "accuracy": c.metrics.accuracy,
        "macro-F1": c.metrics.macro_f1,
        "held-out (grouped folds)": c.held_out_score,
        "fit s": round(c.fit_seconds, 1),
        "rows/s": round(c.rows_per_second),
    }


def _comparison(folder: Path, candidates: Sequence[Candidate], searches: Mapping[str, Sequence[Trial]]) -> list[str]:
    rows = []
    figure_lines = []
    for c in candidates:
        row = _candidate_row(c)
        for cls, m in c.metrics.per_class.items():
            row[f"{cls} P/R/F1"] = f"{m.precision:.2f}/{m.recall:.2f}/{m.f1:.2f}"
        rows.append(row)
        name = f"confusion_{c.family}_{c.target}_{c.feature_set}.png"
        plot_confusion(
            _array(c.metrics.confusion_matrix),
            c.metrics.classes,
            f"{c.name} — {c.target}",
            folder / "figures" / name,
        )
        figure_lines.append(f"- [{c.name}, {c.target}](figures/{name})")
    table = pd.DataFrame(rows)
    table.to_csv(folder / "comparison.csv", index=False)
    lines = [
        "## Model comparison (validation split; attack_cat models scored on its attack rows)",
        "",
        "Each model tuned by a bounded random search scored on an inner hold-out of the training split; "
        "an averaged family (rf+hgb) has no search space and averages its members' default settings.",
        "",
    ]
    for target in table["target"].unique():
        part = table[table["target"] == target].dropna(axis=1, how="all")
        lines += [f"### {target}", "", candidate_table(part.drop(columns=["target"])), ""]
    lines += ["Confusion matrices:", "", *figure_lines, "", "### Search trials", ""]
    for key, trials in searches.items():
        lines.append(f"- {key}: " + "; ".join(f"`{json.dumps(t.params)}` → {t.score:.4f}" for t in trials))
    return lines


def _array(matrix: Any) -> np.ndarray:
    return np.asarray(matrix)


def candidate_table(frame: pd.DataFrame) -> str:
    """`_candidate_row`s as a Markdown table: scores to 4 decimals, fit seconds to 1."""
    return _table(frame, floats=4, decimals={"fit s": 1})


def _table(frame: pd.DataFrame, floats: int | None = None, decimals: Mapping[str, int] | None = None) -> str:
    """`frame` as a Markdown table: float cells to `floats` decimals, or to a column's own in `decimals`."""

    def cell(value: Any, places: int | None) -> str:
        if places is not None and isinstance(value, float):
            return f"{value:.{places}f}"
        return str(value)

    places = [(decimals or {}).get(str(column), floats) for column in frame.columns]
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = [
        "| " + " | ".join(cell(v, p) for v, p in zip(row, places, strict=True)) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *body])
