"""Unit tests for the cluster figures: purity and adjusted Rand index on hand-made partitions."""

from __future__ import annotations

import random
import re

import pytest

from seed.core.face_clusters import adjusted_rand_index, purity, subject_of

SUBJECTS = [s for s in "aaaabbbbcccc"]


def test_identical_partitions_score_one_whatever_the_labels():
    clusters = [7, 7, 7, 7, 3, 3, 3, 3, -5, -5, -5, -5]
    assert purity(clusters, SUBJECTS) == 1.0
    assert adjusted_rand_index(clusters, SUBJECTS) == pytest.approx(1.0)


def test_one_cluster_merging_two_subjects():
    clusters = [0] * 8 + [1] * 4  # subjects a and b in one cluster
    assert purity(clusters, SUBJECTS) == pytest.approx(8 / 12)
    # pairs together in both 18, in the clusters 34, in the subjects 18, of 66: (18 - 102/11) / (26 - 102/11)
    assert adjusted_rand_index(clusters, SUBJECTS) == pytest.approx(12 / 23)


def test_splitting_a_subject_keeps_purity_but_not_the_rand_index():
    clusters = [0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]
    assert purity(clusters, SUBJECTS) == 1.0
    assert 0 < adjusted_rand_index(clusters, SUBJECTS) < 1


def test_the_figures_kanta_s_dbscan_gets_on_the_yale_faces():
    """The contract: 162 faces, subjects 04, 06 and 14 in one cluster of 33: purity 0.864, ARI 0.800."""
    subjects, clusters = [], []
    for s in range(1, 16):
        n = 10 if s in (1, 5, 11) else 11  # three rightlight images have no face
        subjects += [s] * n
        clusters += [4 if s in (4, 6, 14) else s] * n
    assert len(subjects) == 162 and len(set(clusters)) == 13
    assert round(purity(clusters, subjects), 3) == 0.864
    assert round(adjusted_rand_index(clusters, subjects), 3) == 0.8


def test_a_random_labelling_scores_about_zero():
    rng = random.Random(7)
    subjects = [i % 15 for i in range(1500)]
    clusters = [rng.randrange(15) for _ in subjects]
    assert abs(adjusted_rand_index(clusters, subjects)) < 0.02
    assert purity(clusters, subjects) < 0.2


def test_label_permutations_change_nothing():
    rng = random.Random(3)
    subjects = [rng.randrange(5) for _ in range(60)]
    clusters = [s if rng.random() < 0.7 else rng.randrange(6) for s in subjects]
    rename = {c: f"cluster-{(c * 7) % 11}" for c in set(clusters)}
    renamed = [rename[c] for c in clusters]
    order = list(range(60))
    rng.shuffle(order)
    p, ari = purity(clusters, subjects), adjusted_rand_index(clusters, subjects)
    assert purity(renamed, subjects) == p and adjusted_rand_index(renamed, subjects) == pytest.approx(ari)
    shuffled = ([clusters[i] for i in order], [subjects[i] for i in order])
    assert purity(*shuffled) == pytest.approx(p) and adjusted_rand_index(*shuffled) == pytest.approx(ari)
    assert adjusted_rand_index(subjects, clusters) == pytest.approx(ari)  # symmetric
    assert 0 < ari < 1


def test_trivial_partitions():
    assert purity([], []) == 0.0
    assert adjusted_rand_index([], []) == 1.0 and adjusted_rand_index([1], ["a"]) == 1.0
    assert adjusted_rand_index([1, 1, 1], ["a", "a", "a"]) == 1.0  # one block each: they agree
    assert adjusted_rand_index([1, 2, 3], ["a", "b", "c"]) == 1.0  # singletons each: they agree
    assert adjusted_rand_index([1, 2, 3, 4], ["a"] * 4) == 0.0  # singletons against one block
    assert purity([0] * 4, ["a", "a", "b", "c"]) == 0.5


def test_the_labellings_must_be_the_same_faces():
    with pytest.raises(ValueError):
        purity([1, 2], ["a"])
    with pytest.raises(ValueError):
        adjusted_rand_index([1, 2, 3], ["a", "b"])


def test_subject_of_reads_the_first_group_of_the_member_path():
    pattern = re.compile(r"subject(\d+)")
    assert subject_of("yale_png/subject07/subject07_happy.png", pattern) == "07"
    assert subject_of("yale_png/.DS_Store", pattern) is None
    assert subject_of("people/ann-3.png", re.compile(r"/([a-z]+)-\d")) == "ann"
