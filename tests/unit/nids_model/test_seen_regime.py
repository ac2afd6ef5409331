"""The seen regime: exact vector equality (NaN included), the table's counts, the rule, the digest."""

from __future__ import annotations

import numpy as np
import pytest

from nids_model.seen_regime import SeenRegime, SeenVectors, row_buckets


def matrix(*rows: tuple[float, ...]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float32)


def test_a_row_is_seen_exactly_when_its_vector_occurred_byte_for_byte() -> None:
    nan = float("nan")
    table = SeenVectors.of(matrix((1, 2, 3), (1, 2, 3), (1, nan, 3), (4, 5, 6)), np.array([1, 0, 1, 1]))
    found = table.find(matrix((1, 2, 3), (1, nan, 3), (nan, 2, 3), (1, 2, 3.0001), (4, 5, 6), (0, 0, 0)))
    assert (found >= 0).tolist() == [True, True, False, False, True, False]
    assert table.rows[found[0]] == 2 and table.attacks[found[0]] == 1
    assert table.rows[found[1]] == 1 and table.attacks[found[1]] == 1
    assert len(table) == 3


def test_a_negative_zero_is_another_vector() -> None:
    # Byte equality: the lookup never calls two vectors equal that the bytes tell apart.
    table = SeenVectors.of(matrix((0.0, 1.0)), np.array([1]))
    assert table.find(matrix((-0.0, 1.0))).tolist() == [-1]


def test_vectors_whose_hashes_clash_stay_out_of_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    from nids_model import seen_regime

    monkeypatch.setattr(seen_regime, "row_hashes", lambda words: np.zeros(len(words), dtype=np.uint64))
    table = SeenVectors.of(matrix((1, 2), (3, 4)), np.array([0, 1]))
    assert len(table) == 0
    assert table.find(matrix((1, 2))).tolist() == [-1]


def test_an_empty_batch_and_a_wrong_width_are_handled() -> None:
    table = SeenVectors.of(matrix((1, 2)), np.array([0]))
    assert table.find(np.empty((0, 2), np.float32)).shape == (0,)
    with pytest.raises(ValueError, match="expected rows of 8 bytes"):
        table.find(matrix((1, 2, 3)))


def test_the_rule_blends_a_seen_flows_probability_with_its_training_rows() -> None:
    table = SeenVectors.of(matrix((1, 1), (1, 1), (1, 1), (2, 2)), np.array([1, 1, 0, 0]))
    rule = SeenRegime(table, prior=1.0, class_scale=np.array([2.0, 1.0]))
    seen = table.find(matrix((1, 1), (9, 9)))
    blended = rule.attack_probability(seen, np.array([0.5, 0.5]))
    assert blended.tolist() == pytest.approx([(2 + 0.5) / (3 + 1), 0.5])
    classes = rule.class_probabilities(seen, np.array([[0.5, 0.5], [0.5, 0.5]]))
    np.testing.assert_allclose(classes, [[2 / 3, 1 / 3], [0.5, 0.5]])
    not_attacks = rule.class_probabilities(seen, np.full((2, 2), np.nan))
    assert np.isnan(not_attacks).all()


def test_the_digest_covers_the_table_and_the_rule() -> None:
    def rule(prior: float = 1.0, attacks: int = 1) -> SeenRegime:
        return SeenRegime(SeenVectors.of(matrix((1, 2)), np.array([attacks])), prior, np.ones(2))

    assert rule().digest() == rule().digest()
    assert len({rule().digest(), rule(prior=2.0).digest(), rule(attacks=0).digest()}) == 3


def test_a_vector_falls_in_the_last_bucket_its_training_rows_reach() -> None:
    rows = np.array([1, 2, 4, 5, 9, 10, 300])
    assert row_buckets((1, 2, 5, 10), rows).tolist() == [0, 1, 1, 2, 2, 3, 3]
    assert row_buckets((1,), rows).tolist() == [0] * 7


def test_each_bucket_of_training_rows_scales_its_vectors_own_way() -> None:
    once, thrice, twelve = (1, 1), (2, 2), (3, 3)
    table = SeenVectors.of(matrix(once, *[thrice] * 3, *[twelve] * 12), np.ones(16))
    scales = np.array([[1.0, 1.0], [3.0, 1.0], [9.0, 1.0], [1.0, 4.0]])
    rule = SeenRegime(table, prior=1.0, class_scale=scales, min_rows=(1, 2, 10, 11))
    seen = table.find(matrix(once, thrice, twelve, (9, 9)))
    classes = rule.class_probabilities(seen, np.full((4, 2), 0.5))
    np.testing.assert_allclose(classes, [[0.5, 0.5], [0.75, 0.25], [0.2, 0.8], [0.5, 0.5]])


def test_a_one_bucket_rule_digests_as_formats_6_and_7_did() -> None:
    # Their manifests recorded this digest of a one-scale rule: it must still verify.
    table = SeenVectors.of(matrix((1, 2), (1, 2), (3, 4)), np.array([1, 0, 1]))
    one_scale = np.array([2.0, 0.5])
    format_7 = "cb714da1fa07e517a445d7e7d52bb18768417437a5c47dc36acae9928eb3c1b9"
    assert SeenRegime(table, 1.0, one_scale).digest() == format_7
    assert SeenRegime(table, 1.0, one_scale[None, :]).digest() == format_7
    two_buckets = SeenRegime(table, 1.0, np.array([[2.0, 0.5], [1.0, 1.0]]), min_rows=(1, 2))
    assert two_buckets.digest() != SeenRegime(table, 1.0, two_buckets.class_scale, min_rows=(1, 3)).digest()


def test_a_seen_attack_is_decided_from_its_vectors_held_out_probabilities() -> None:
    # The model trained on the vector's copies and leans to their majority (class 0); a model that
    # never saw the vector said class 1, and that is what the rule scales.
    vectors = matrix((1, 1), (1, 1), (2, 2))
    held_out = np.array([[0.2, 0.8], [0.2, 0.8], [0.6, 0.4]])
    table = SeenVectors.of(vectors, np.ones(3), held_out)
    rule = SeenRegime(table, prior=1.0, class_scale=np.array([1.0, 0.5]))
    seen = table.find(matrix((1, 1), (2, 2), (9, 9)))
    model = np.array([[0.9, 0.1], [0.9, 0.1], [0.9, 0.1]])
    classes = rule.class_probabilities(seen, model)
    np.testing.assert_allclose(classes, [[0.2 / 0.6, 0.4 / 0.6], [0.6 / 0.8, 0.2 / 0.8], [0.9, 0.1]])
    assert table.held_out is not None and table.held_out.dtype == np.float32
    assert table.nbytes == sum(array.nbytes for array in (table.hashes, table.words, table.rows, table.attacks)) + 16


def test_held_out_probabilities_that_differ_within_one_vector_are_refused() -> None:
    with pytest.raises(ValueError, match="rows of one vector must carry the same probabilities"):
        SeenVectors.of(matrix((1, 1), (1, 1)), np.ones(2), np.array([[0.2, 0.8], [0.3, 0.7]]))


def test_the_digest_covers_the_held_out_probabilities() -> None:
    def rule(held_out: list[list[float]] | None) -> SeenRegime:
        probabilities = None if held_out is None else np.array(held_out)
        return SeenRegime(SeenVectors.of(matrix((1, 2)), np.array([1]), probabilities), 1.0, np.ones(2))

    digests = {rule(None).digest(), rule([[0.5, 0.5]]).digest(), rule([[0.25, 0.75]]).digest()}
    assert len(digests) == 3
