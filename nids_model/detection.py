"""DetectionModel: the two per-target pipelines and the alert rule that keeps their verdicts consistent."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from nids_common.schema import NORMAL
from nids_common.stages import StageTimes
from nids_model.attack_only import AttackOnlyClassifier
from nids_model.averaging import ProbabilityAverage
from nids_model.compiled import ProbabilityFunction, distinct_rows, probability_function
from nids_model.preprocess import ColumnTable
from nids_model.reweighting import ClassScaledClassifier
from nids_model.seen_regime import SeenRegime

# What score_features spends its time on (StageTimes names).
DISTINCT_ROWS = "distinct_rows"
LABEL_MODEL = "label_model"
ATTACK_CAT_MODEL = "attack_cat_model"
SEEN_LOOKUP = "seen_lookup"
SCORING_STAGES = (DISTINCT_ROWS, LABEL_MODEL, SEEN_LOOKUP, ATTACK_CAT_MODEL)


@dataclasses.dataclass(frozen=True)
class Scores:
    """The verdicts of a batch of n_samples flows.

    Attributes
    ----------
    attack_probability : ndarray of shape (n_samples,), dtype=float64
        P(label = 1) from the label pipeline.
    is_attack : ndarray of shape (n_samples,), dtype=bool
        attack_probability >= threshold.
    attack_cat : ndarray of shape (n_samples,), dtype=object (str)
        Normal exactly where is_attack is False.
    class_probabilities : ndarray of shape (n_samples, n_classes), dtype=float64
        From the attack_cat pipeline, columns in the order of `DetectionModel.classes`; NaN rows
        where not an attack.
    """

    attack_probability: np.ndarray
    is_attack: np.ndarray
    attack_cat: np.ndarray
    class_probabilities: np.ndarray


@dataclasses.dataclass(frozen=True)
class Features:
    """The model matrices of a batch (`FlowPreprocessor.transform`).

    Attributes
    ----------
    label : ndarray of shape (n_samples, n_label_features), dtype=float32
    attack_cat : ndarray of shape (n_samples, n_attack_cat_features), dtype=float32
        The same array as `label` when both pipelines preprocess alike.
    """

    label: np.ndarray
    attack_cat: np.ndarray


@dataclasses.dataclass
class DetectionModel:
    """The alert rule: the label pipeline decides *whether* a flow is an attack (probability ≥ threshold),
    the attack_cat pipeline decides *which*, taking its most probable non-Normal class. So an attack
    verdict never says Normal, and a Normal verdict never names an attack. With `seen`, a flow whose
    exact feature vector occurred in training has both decisions made by the seen regime's rule
    (`nids_model.seen_regime`)."""

    label_pipeline: Pipeline
    attack_cat_pipeline: Pipeline
    threshold: float = 0.5
    seen: SeenRegime | None = None

    def __post_init__(self) -> None:
        self._init_scoring_state()

    def _init_scoring_state(self) -> None:
        # Scoring state, derived from the pipelines and never pickled: the artifact holds only
        # sklearn objects and the threshold.
        self._threads = 1
        self._compiled: tuple[ProbabilityFunction, ProbabilityFunction] | None = None
        self.classes = tuple(str(c) for c in self.attack_cat_pipeline.classes_)
        self._positive_column = list(self.label_pipeline.classes_).index(1)
        self._normal_index = self.classes.index(NORMAL)
        label_pre, cat_pre = self.label_pipeline[0], self.attack_cat_pipeline[0]
        # Both pipelines usually see the same features with the same fitted vocabulary: transform once.
        self._shared_matrix = (
            tuple(label_pre.features) == tuple(cat_pre.features)
            and label_pre.scale == cat_pre.scale
            and label_pre.vocabularies_ == cat_pre.vocabularies_
            and label_pre.medians_ == cat_pre.medians_
        )

    def __getstate__(self) -> dict[str, object]:
        return {
            "label_pipeline": self.label_pipeline,
            "attack_cat_pipeline": self.attack_cat_pipeline,
            "threshold": self.threshold,
            "seen": self.seen,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_scoring_state()

    def score(self, flows: ColumnTable) -> Scores:
        """`score_features` of `features`: a DataFrame or mapping of columns of n_samples flows → Scores."""
        return self.score_features(self.features(flows))

    def features(self, flows: ColumnTable) -> Features:
        """The model matrices of a batch. Apart from `score_features` so that a caller can build them
        on one thread and score on another (this part needs the GIL, the compiled trees do not)."""
        label_matrix = self.label_pipeline[0].transform(flows)
        if self._shared_matrix:
            return Features(label_matrix, label_matrix)
        return Features(label_matrix, self.attack_cat_pipeline[0].transform(flows))

    def score_features(self, features: Features, stages: StageTimes | None = None) -> Scores:
        """The Scores of a batch's n_samples rows. Each distinct feature vector is scored once per
        batch: floods and scans repeat theirs (a third of UNSW-NB15's rows are repeats), and a row's
        score depends on nothing else. `stages`, when given, gets the seconds of SCORING_STAGES."""
        stages = stages if stages is not None else StageTimes()
        with stages.timing(DISTINCT_ROWS):
            key = (
                features.label
                if features.label is features.attack_cat
                else np.hstack([features.label, features.attack_cat])
            )
            first, inverse = distinct_rows(key)
        distinct = self.decide(*self._cascade(features.label[first], features.attack_cat[first], stages))
        return Scores(
            distinct.attack_probability[inverse],
            distinct.is_attack[inverse],
            distinct.attack_cat[inverse],
            distinct.class_probabilities[inverse],
        )

    def _cascade(
        self, label_matrix: np.ndarray, attack_cat_matrix: np.ndarray, stages: StageTimes
    ) -> tuple[np.ndarray, np.ndarray]:
        """(attack_probability (n_samples,), class_probabilities (n_samples, n_classes)), both float64,
        of float32 matrices (n_samples, n_features); NaN class rows where not an attack.

        The attack_cat pipeline runs only on the rows the label pipeline calls attacks, since a
        Normal verdict needs no class, and of those only on the novel ones when the seen table decides
        a seen attack's class itself. Its cost is paid in full only under a flood of novel attacks."""
        label_proba, attack_cat_proba = self._probability_functions()
        with stages.timing(LABEL_MODEL):
            attack_probability = label_proba(label_matrix)[:, self._positive_column]
        with stages.timing(SEEN_LOOKUP):
            seen = self.regime(label_matrix)
            if self.seen is not None:
                attack_probability = self.seen.attack_probability(seen, attack_probability)
        attacks = np.flatnonzero(attack_probability >= self.threshold)
        class_probabilities = np.full((len(attack_probability), len(self.classes)), np.nan)
        if attacks.size:
            # A seen attack's class comes from the table where it keeps held-out probabilities: only
            # the novel attacks need the attack_cat model.
            modelled = attacks[seen[attacks] < 0] if self.seen is not None and self.seen.decides_classes else attacks
            if modelled.size:
                with stages.timing(ATTACK_CAT_MODEL):
                    class_probabilities[modelled] = attack_cat_proba(attack_cat_matrix[modelled])
            if self.seen is not None:
                class_probabilities = self.seen.class_probabilities(seen, class_probabilities, attacks)
        return attack_probability, class_probabilities

    def regime(self, label_matrix: np.ndarray) -> np.ndarray:
        """Per row of the label matrix (n_samples, n_label_features): the seen table's index of its
        vector, -1 for a novel one (every row when the model has no seen regime); intp."""
        if self.seen is None:
            return np.full(len(label_matrix), -1, dtype=np.intp)
        return self.seen.vectors.find(label_matrix)

    def use_threads(self, threads: int) -> None:
        """Score each batch on up to `threads` cores: compiled models split their rows, scikit-learn
        estimators that take `n_jobs` (RandomForest, KNN, also inside the wrappers) get it."""
        self._threads = threads
        self._compiled = None
        for pipeline in (self.label_pipeline, self.attack_cat_pipeline):
            for estimator in estimators_within(pipeline[-1]):
                if "n_jobs" in estimator.get_params(deep=False):
                    estimator.set_params(n_jobs=threads)

    def warm_up(self) -> None:
        """Build and run the compiled scoring once, so the first real batch pays no start-up cost."""
        label = np.zeros((1, len(self.label_pipeline[0].features)), np.float32)
        cat = label if self._shared_matrix else np.zeros((1, len(self.attack_cat_pipeline[0].features)), np.float32)
        self.score_features(Features(label, cat))

    def _probability_functions(self) -> tuple[ProbabilityFunction, ProbabilityFunction]:
        if self._compiled is None:
            self._compiled = (
                probability_function(self.label_pipeline[-1], self._threads),
                probability_function(self.attack_cat_pipeline[-1], self._threads),
            )
        return self._compiled

    def decide(self, attack_probability: np.ndarray, class_probabilities: np.ndarray) -> Scores:
        """The alert rule applied to probabilities.

        Parameters
        ----------
        attack_probability : ndarray of shape (n_samples,), dtype=float64
        class_probabilities : ndarray of shape (n_samples, n_classes), dtype=float64
            NaN rows are allowed where attack_probability is below the threshold.

        Returns
        -------
        scores : Scores
            attack_cat is the most probable class other than Normal where is_attack, else Normal.
        """
        is_attack = attack_probability >= self.threshold
        attack_only = np.nan_to_num(class_probabilities, nan=0.0)
        attack_only[:, self._normal_index] = -1.0
        names = np.asarray(self.classes, dtype=object)
        attack_cat = np.where(is_attack, names[attack_only.argmax(axis=1)], NORMAL)
        return Scores(attack_probability, is_attack, attack_cat, class_probabilities)

    def describe(self) -> Mapping[str, object]:
        return {
            "label": estimator_name(self.label_pipeline[-1]),
            "attack_cat": estimator_name(self.attack_cat_pipeline[-1]),
            "threshold": self.threshold,
            "classes": list(self.classes),
            "seen_vectors": 0 if self.seen is None else len(self.seen.vectors),
        }


def wrapped_estimators(estimator: Any) -> list[Any]:
    """The fitted estimators one of this package's wrappers holds (attack only, class scaling, the
    average); none for a model itself (a forest's trees are its own business)."""
    if isinstance(estimator, ProbabilityAverage):
        return list(estimator.estimators_)
    if isinstance(estimator, AttackOnlyClassifier | ClassScaledClassifier):
        return [estimator.estimator_]
    return []


def estimators_within(estimator: Any) -> Iterator[Any]:
    """`estimator` and every estimator its wrappers hold, outermost first."""
    yield estimator
    for inner in wrapped_estimators(estimator):
        yield from estimators_within(inner)


def estimator_name(estimator: Any) -> str:
    """The classifier with what it wraps, as an operator reads it in the log: for example
    AttackOnlyClassifier(ClassScaledClassifier(ProbabilityAverage(RandomForestClassifier,
    UnweightedBinsBoostingClassifier)))."""
    inner = wrapped_estimators(estimator)
    name = type(estimator).__name__
    return f"{name}({', '.join(estimator_name(part) for part in inner)})" if inner else name
