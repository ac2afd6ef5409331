"""The seen regime: flows whose exact feature vector occurred in the training rows.

UNSW-NB15 repeats a third of its feature vectors (floods and scans send the same flow again and again)
and some vectors carry more than one class. A flow whose vector training held is a different problem
from a novel one: the training rows of that vector say how often it was an attack, and the class
scales that serve macro-F1 best on such conflicting vectors differ from those tuned for vectors
never seen (grouped folds). So a seen flow gets its own rule, tuned on plain folds, where copies of a
vector fall on both sides as they do between training and live traffic; a novel flow keeps the model
and the grouped-tuned scales alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence

import numpy as np

from nids_model.compiled import distinct_rows, find_rows, row_hashes, row_words


class SeenVectors:
    """Every distinct feature vector of the training rows with its row and attack counts; `find`
    decides by exact equality of the model's matrix rows (byte for byte, so a NaN matches a NaN).

    Attributes
    ----------
    hashes : ndarray of shape (n_vectors,), dtype=uint64
        FNV-1a of each vector's bytes, ascending.
    words : ndarray of shape (n_vectors, n_words), dtype=uint32 or uint8
        Each vector's bytes (`row_words`), in the order of `hashes`.
    rows, attacks : ndarray of shape (n_vectors,), dtype=int64
        Training rows with that vector, and how many of them were attacks (label 1).
    held_out : ndarray of shape (n_vectors, n_classes), dtype=float32, or None
        Each vector's attack_cat class probabilities (before class scaling) from a model that never
        trained on the vector: the grouped held-out predictions training makes anyway. None in
        artifacts before format 9, whose seen rule scales the deployed model's probabilities.
    """

    # Tables pickled before format 9 lack the attribute; they read as None.
    held_out: np.ndarray | None = None

    def __init__(
        self,
        hashes: np.ndarray,
        words: np.ndarray,
        rows: np.ndarray,
        attacks: np.ndarray,
        held_out: np.ndarray | None = None,
    ) -> None:
        self.hashes = hashes
        self.words = words
        self.rows = rows
        self.attacks = attacks
        self.held_out = held_out

    @classmethod
    def of(cls, matrix: np.ndarray, is_attack: np.ndarray, held_out: np.ndarray | None = None) -> SeenVectors:
        """The table of training rows.

        Parameters
        ----------
        matrix : ndarray of shape (n_samples, n_features), dtype=float32
            The model's matrix of the training rows (`FlowPreprocessor.transform`).
        is_attack : ndarray of shape (n_samples,), bool or 0/1
        held_out : ndarray of shape (n_samples, n_classes), or None
            Each row's vector's held-out class probabilities, equal for the rows of one vector; kept
            as float32.
        """
        first, inverse = distinct_rows(matrix)
        words = row_words(matrix[first])
        hashes = row_hashes(words)
        rows = np.bincount(inverse, minlength=len(first)).astype(np.int64)
        attacks = np.bincount(inverse, weights=np.asarray(is_attack, dtype=np.float64), minlength=len(first))
        order = np.argsort(hashes, kind="stable")
        sorted_hashes = hashes[order]
        # Two distinct vectors with one hash would make a lookup ambiguous: both stay out of the table
        # and their flows count as novel (with 64-bit hashes, about never).
        clash = np.zeros(len(order), dtype=bool)
        equal = sorted_hashes[1:] == sorted_hashes[:-1]
        clash[1:] |= equal
        clash[:-1] |= equal
        keep = order[~clash]
        by_vector = None
        if held_out is not None:
            held_out = np.asarray(held_out, dtype=np.float32)
            if not np.array_equal(held_out, held_out[first][inverse], equal_nan=True):
                raise ValueError("held_out: the rows of one vector must carry the same probabilities")
            by_vector = held_out[first][keep]
        return cls(hashes[keep], words[keep], rows[keep], attacks[keep].astype(np.int64), by_vector)

    def __len__(self) -> int:
        return len(self.hashes)

    @property
    def arrays(self) -> tuple[np.ndarray, ...]:
        """Every array of the table, in the order the digest takes them."""
        arrays = (self.hashes, self.words, self.rows, self.attacks)
        return arrays if self.held_out is None else (*arrays, self.held_out)

    @property
    def nbytes(self) -> int:
        return sum(int(array.nbytes) for array in self.arrays)

    def find(self, matrix: np.ndarray) -> np.ndarray:
        """The table index of each row's vector, -1 for a vector training never had.

        Parameters
        ----------
        matrix : ndarray of shape (n_samples, n_features), the dtype the table was built from

        Returns
        -------
        index : ndarray of shape (n_samples,), dtype=intp
        """
        words = row_words(matrix)
        if words.shape[1] != self.words.shape[1] or words.dtype != self.words.dtype:
            raise ValueError(f"expected rows of {self.words.nbytes // max(len(self), 1)} bytes, got {matrix.shape}")
        return find_rows(words, self.hashes, self.words)


def blended_probability(attacks: np.ndarray, rows: np.ndarray, prior: float, probability: np.ndarray) -> np.ndarray:
    """A seen flow's P(attack): its vector's training `attacks` of `rows`, with the model's
    `probability` worth `prior` rows. All (n_samples,); float64."""
    blended: np.ndarray = (attacks + prior * probability) / (rows + prior)
    return blended


def row_buckets(min_rows: Sequence[int], vector_rows: np.ndarray) -> np.ndarray:
    """Which bucket (intp, like `vector_rows`) each seen vector falls in by its training rows: the
    last of the ascending `min_rows` (the first is 1) that it reaches."""
    bucket: np.ndarray = np.searchsorted(np.asarray(min_rows), vector_rows, side="right") - 1
    return bucket


@dataclasses.dataclass(frozen=True, eq=False)
class SeenRegime:
    """The rule for seen flows.

    Attributes
    ----------
    vectors : SeenVectors
        Built from the training rows only.
    prior : float
        The weight of the label model's P(attack) against the vector's training rows: a seen flow's
        P(attack) is (attacks + prior·p) / (rows + prior).
    class_scale : ndarray of shape (n_buckets, n_classes), dtype=float64
        Multiplies a seen attack's class probabilities (columns in `DetectionModel.classes` order)
        before the most probable attack class is taken: the row of the vector's bucket of training
        rows. Artifact formats 6 and 7 hold one scale of shape (n_classes,), read as one bucket.
        The probabilities scaled are the vector's held-out ones (`SeenVectors.held_out`) where the
        table has them: the deployed model trained on the vector's copies and echoes their majority,
        where a model that never saw the vector generalises from its neighbours, which decides the
        held-out copies of conflicting vectors better (docs/benchmarks.md, 2026-12-04, evening).
    min_rows : tuple of int, ascending from 1
        Where each bucket starts. A vector training held once and one it held ten times are not
        equally well described by the probabilities, so each bucket has its own scales.
    """

    vectors: SeenVectors
    prior: float
    class_scale: np.ndarray
    # The default is also what an artifact of formats 6 and 7, pickled before the field, reads.
    min_rows: tuple[int, ...] = (1,)

    def attack_probability(self, seen: np.ndarray, probability: np.ndarray) -> np.ndarray:
        """P(attack) (n_samples,), float64, blended with the training rows where `seen` (`find`'s
        index per row) is not -1."""
        rows = seen >= 0
        at = seen[rows]
        blended = probability.copy()
        blended[rows] = blended_probability(
            self.vectors.attacks[at], self.vectors.rows[at], self.prior, probability[rows]
        )
        return blended

    @property
    def decides_classes(self) -> bool:
        """Whether a seen attack's class comes from the table alone (its vector's held-out
        probabilities), so that the attack_cat model need not be asked about it."""
        return self.vectors.held_out is not None

    def class_probabilities(
        self, seen: np.ndarray, probabilities: np.ndarray, attacks: np.ndarray | None = None
    ) -> np.ndarray:
        """Class probabilities (n_samples, n_classes), float64: where seen, the vector's held-out
        probabilities (the model's `probabilities` in tables without them), rescaled and renormalised.
        `attacks` (intp indices) are the rows that need a class; by default the rows of
        `probabilities` without NaN. Where `decides_classes`, a seen attack's row of `probabilities`
        is not read and may be NaN. Other rows are returned as given."""
        wanted = np.flatnonzero(~np.isnan(probabilities).any(axis=1)) if attacks is None else attacks
        rows = wanted[seen[wanted] >= 0]
        if not rows.size:
            return probabilities
        held_out = self.vectors.held_out
        base = probabilities[rows] if held_out is None else held_out[seen[rows]]
        scaled = base * self.scales(seen[rows])
        total = scaled.sum(axis=1, keepdims=True)
        result = probabilities.copy()
        result[rows] = np.divide(scaled, total, out=np.zeros_like(scaled), where=total > 0)
        return result

    @property
    def bucket_scales(self) -> np.ndarray:
        """`class_scale` as (n_buckets, n_classes), also for the one scale of formats 6 and 7."""
        return np.atleast_2d(self.class_scale)

    def scales(self, seen: np.ndarray) -> np.ndarray:
        """The class scales (n_samples, n_classes) of seen flows, by `find`'s index of their vector."""
        scales: np.ndarray = self.bucket_scales[row_buckets(self.min_rows, self.vectors.rows[seen])]
        return scales

    def digest(self) -> str:
        """sha256 of the table and the rule's parameters: the manifest records it, loading checks it."""
        digest = hashlib.sha256()
        for array in self.vectors.arrays:
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        digest.update(np.float64(self.prior).tobytes())
        digest.update(np.ascontiguousarray(self.class_scale, dtype=np.float64).tobytes())
        if self.min_rows != (1,):
            # One bucket digests as formats 6 and 7 did, so their recorded digests still verify.
            digest.update(np.asarray(self.min_rows, dtype=np.int64).tobytes())
        return digest.hexdigest()
