"""Retrieval metrics against naive references written here: a per-row argsort on tie-free scores, brute-force
averaging over every order of the tied items on scores with many ties, and hand-made ranks and ties."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from harma.metrics import METRIC_KEYS, REPORTED_KEYS, TIE_GAP_KEY, TIE_POLICIES, retrieval_metrics, tie_counts


def naive_metrics(scores: np.ndarray, img2txt):
    n_img, n_txt = scores.shape
    txt2img = np.zeros(n_txt, dtype=int)
    for i, caps in enumerate(img2txt):
        txt2img[caps] = i
    i2t = np.zeros(n_img)
    for i in range(n_img):
        order = np.argsort(-scores[i], kind="stable")
        i2t[i] = min(int(np.where(order == t)[0][0]) for t in img2txt[i])
    t2i = np.zeros(n_txt)
    for t in range(n_txt):
        order = np.argsort(-scores[:, t], kind="stable")
        t2i[t] = int(np.where(order == txt2img[t])[0][0])
    out = {}
    for k in (1, 5, 10):
        out[f"txt_r{k}"] = 100 * np.mean(i2t < k)
        out[f"img_r{k}"] = 100 * np.mean(t2i < k)
    out["r_mean"] = np.mean([out[k] for k in METRIC_KEYS[:6]])
    return out


def tie_orders(values: np.ndarray):
    """Every order of the indices by descending value that is consistent with the values (ties in any order)."""
    levels = sorted(set(values.tolist()), reverse=True)
    groups = [[int(i) for i in np.flatnonzero(values == v)] for v in levels]
    for parts in itertools.product(*(itertools.permutations(g) for g in groups)):
        yield [i for part in parts for i in part]


def exact_tie_average(scores: np.ndarray, img2txt) -> dict[str, float]:
    """Recalls averaged over all tie orders of every row and column: the expected policy, by brute force."""
    n_img, n_txt = scores.shape
    owner = {t: i for i, caps in enumerate(img2txt) for t in caps}
    hits = {f"{d}_r{k}": [] for d in ("txt", "img") for k in (1, 5, 10)}
    for queries, own_of, line, d in ((range(n_img), lambda i: set(img2txt[i]), lambda i: scores[i], "txt"),
                                     (range(n_txt), lambda t: {owner[t]}, lambda t: scores[:, t], "img")):
        for q in queries:
            ranks = [min(order.index(o) for o in own_of(q)) for order in tie_orders(line(q))]
            for k in (1, 5, 10):
                hits[f"{d}_r{k}"].append(np.mean([r < k for r in ranks]))
    out = {key: 100 * float(np.mean(v)) for key, v in hits.items()}
    out["r_mean"] = float(np.mean([out[k] for k in METRIC_KEYS[:6]]))
    return out


def tied_scores(seed: int, n_img: int, levels: int) -> tuple[np.ndarray, list[list[int]]]:
    """Scores on a few levels (many exact ties), images owning 1 to 3 captions."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 4, size=n_img)
    img2txt = np.split(np.arange(sizes.sum()), np.cumsum(sizes)[:-1])
    scores = rng.integers(0, levels, size=(n_img, sizes.sum())).astype(np.float32) / levels
    return scores, [caps.tolist() for caps in img2txt]


def random_scores(seed: int, n_img: int = 37) -> tuple[np.ndarray, list[list[int]]]:
    rng = np.random.default_rng(seed)
    img2txt = [list(range(5 * i, 5 * i + 5)) for i in range(n_img)]
    scores = rng.normal(size=(n_img, 5 * n_img))   # float64: no two values equal
    # make some images easy so recalls are not all ~0
    for i in range(0, n_img, 3):
        scores[i, img2txt[i][2]] += 3
        scores[:, img2txt[i][0]] -= 0.5
        scores[i, img2txt[i][0]] += 4
    return scores, img2txt


@pytest.mark.parametrize("ties", TIE_POLICIES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_naive_reference_on_random_scores(seed, ties):
    scores, img2txt = random_scores(seed)
    assert np.unique(scores).size == scores.size
    got = retrieval_metrics(scores, img2txt, ties=ties)
    ref = naive_metrics(scores, img2txt)
    assert list(got) == list(REPORTED_KEYS) and got[TIE_GAP_KEY] == 0.0
    for k in METRIC_KEYS:
        assert got[k] == pytest.approx(ref[k], abs=1e-9), k


@pytest.mark.parametrize("seed, n_img, levels", [(0, 4, 3), (1, 5, 4), (2, 6, 3), (3, 5, 2), (6, 6, 5)])
def test_expected_policy_equals_the_average_over_all_tie_orders(seed, n_img, levels):
    scores, img2txt = tied_scores(seed, n_img, levels)
    got = retrieval_metrics(scores, img2txt, ties="expected")
    ref = exact_tie_average(scores, img2txt)
    for k in METRIC_KEYS:
        assert got[k] == pytest.approx(ref[k], abs=1e-9), k


@pytest.mark.parametrize("seed", [0, 1])
def test_policies_bracket_the_expectation_and_gap_is_their_difference(seed):
    scores, img2txt = tied_scores(seed, 40, 4)
    best, mid, worst = (retrieval_metrics(scores, img2txt, ties=t) for t in ("optimistic", "expected",
                                                                             "pessimistic"))
    for k in METRIC_KEYS:
        assert best[k] >= mid[k] >= worst[k], k
    assert best["r_mean"] > worst["r_mean"]
    assert mid[TIE_GAP_KEY] == best[TIE_GAP_KEY] == pytest.approx(best["r_mean"] - worst["r_mean"], abs=1e-12)


def one_caption_each(n: int, row0: dict[int, float]) -> np.ndarray:
    """n images owning one caption each (caption i to image i), own score 1.0, except row 0 as given."""
    scores = np.eye(n)
    scores[0] = 0.0
    for t, v in row0.items():
        scores[0, t] = v
    return scores


# Image 0's own caption 0 scores 0.5; `above` captions score 0.9 and `tied` others 0.5 in its row.  The other 7
# images rank their own caption first, and every caption's own image scores highest in its column.  Image 0's
# rank is above + X: X = 0 (optimistic), X = tied (pessimistic), X uniform on {0..tied} (expected), so
# P(rank < k) = (number of x in 0..tied with above + x < k) / (tied + 1); txt_rk = 100 (7 + p) / 8.
HAND_TIES = [
    # above, tied, {policy: (p@1, p@5, p@10)}
    (0, 1, {"expected": (1 / 2, 1, 1), "optimistic": (1, 1, 1), "pessimistic": (0, 1, 1)}),    # X in {0, 1}
    (0, 2, {"expected": (1 / 3, 1, 1), "optimistic": (1, 1, 1), "pessimistic": (0, 1, 1)}),    # X in {0, 1, 2}
    (0, 4, {"expected": (1 / 5, 1, 1), "optimistic": (1, 1, 1), "pessimistic": (0, 1, 1)}),    # 0 + 4 < 5
    # rank 3 + X, X in {0..4}: < 5 for X in {0, 1} -> 2/5; < 10 always
    (3, 4, {"expected": (0, 2 / 5, 1), "optimistic": (0, 1, 1), "pessimistic": (0, 0, 1)}),
]


@pytest.mark.parametrize("above, tied, want", HAND_TIES)
@pytest.mark.parametrize("ties", TIE_POLICIES)
def test_true_caption_tied_with_others(above, tied, want, ties):
    row0 = {0: 0.5, **{t: 0.9 for t in range(1, 1 + above)}, **{t: 0.5 for t in range(1 + above, 1 + above + tied)}}
    m = retrieval_metrics(one_caption_each(8, row0), [[i] for i in range(8)], ties=ties)
    for k, p in zip((1, 5, 10), want[ties]):
        assert m[f"txt_r{k}"] == pytest.approx(100 * (7 + p) / 8), k
        assert m[f"img_r{k}"] == 100.0
    # gap = optimistic mR - pessimistic mR = (100 / 6) * sum over k of (p_opt - p_pess) / 8
    gap = sum(o - p for o, p in zip(want["optimistic"], want["pessimistic"])) * 100 / 8 / 6
    assert m[TIE_GAP_KEY] == pytest.approx(gap)


def test_ties_among_own_captions_do_not_count():
    # image 0 owns captions 0, 1, 2; 1-3 own one caption each and score it 1.0, every column's own image is top.
    img2txt = [[0, 1, 2], [3], [4], [5]]
    only_own = np.array([[0.7, 0.7, 0.7, 0.1, 0, 0], [0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 1]])
    # three own captions tied at the top and nothing else there: rank 0 under every policy
    for ties in TIE_POLICIES:
        assert retrieval_metrics(only_own, img2txt, ties=ties) == {**{k: 100.0 for k in METRIC_KEYS},
                                                                   TIE_GAP_KEY: 0.0}
    # two own captions (0, 1) and one non-own (3) tied at 0.7: X counts non-own items before the first own one;
    # orders of {o, o', n}: n first in 2 of 6 -> P(X >= 1) = 1/3, so P(rank < 1) = 2/3 (not 1/3: own ties are
    # not rivals).  txt_r1 = 100 (3 + 2/3) / 4 expected, 100 optimistic, 100 * 3/4 pessimistic (X = 1).
    mixed = only_own.copy()
    mixed[0] = [0.7, 0.7, 0.2, 0.7, 0, 0]
    want_r1 = {"expected": 100 * (3 + 2 / 3) / 4, "optimistic": 100.0, "pessimistic": 75.0}
    for ties in TIE_POLICIES:
        m = retrieval_metrics(mixed, img2txt, ties=ties)
        assert m["txt_r1"] == pytest.approx(want_r1[ties])
        assert [m[k] for k in ("txt_r5", "txt_r10", "img_r1", "img_r5", "img_r10")] == [100.0] * 5
        assert m["r_mean"] == pytest.approx((want_r1[ties] + 500) / 6)
        assert m[TIE_GAP_KEY] == pytest.approx((100 - 75) / 6)


def test_ties_in_the_text_to_image_direction():
    # 8 images, caption i owned by image i.  Column 0: own image 0 scores 0.5, images 1 and 2 too (above 0,
    # tied 2).  Column 1: own image 1 scores 0.6, images 2-4 score 0.9 (above 3), images 5-7 score 0.6 (tied 3).
    # Every image still ranks its own caption first (its row's largest entry).
    scores = np.eye(8)
    scores[[0, 1, 2], 0] = 0.5
    scores[:, 1] = [0, 0.6, 0.9, 0.9, 0.9, 0.6, 0.6, 0.6]
    # caption 0: rank X, X uniform on {0, 1, 2}: P(< 1) = 1/3, P(< 5) = 1.
    # caption 1: rank 3 + X, X uniform on {0..3}: P(< 1) = 0, P(< 5) = P(X <= 1) = 2/4, P(< 10) = 1.
    # The other 6 captions are hits.  img_rk = 100 (6 + p0 + p1) / 8.
    want = {"expected": ((6 + 1 / 3) / 8, (7 + 1 / 2) / 8, 1.0),
            "optimistic": (7 / 8, 1.0, 1.0),     # X = 0: caption 0 at rank 0, caption 1 at rank 3
            "pessimistic": (6 / 8, 7 / 8, 1.0)}  # X = tied: caption 0 at rank 2, caption 1 at rank 6
    for ties in TIE_POLICIES:
        m = retrieval_metrics(scores, [[i] for i in range(8)], ties=ties)
        assert [m[f"img_r{k}"] for k in (1, 5, 10)] == pytest.approx([100 * w for w in want[ties]])
        assert [m[f"txt_r{k}"] for k in (1, 5, 10)] == [100.0] * 3


def test_counts_match_direct_comparisons_across_blocks():
    # 600 rows: several blocks, and column counts above 255 (a byte lane's capacity within one block)
    rng = np.random.default_rng(5)
    img2txt = [[2 * i, 2 * i + 1] for i in range(600)]
    scores = rng.integers(0, 3, size=(600, 1200)).astype(np.float32)
    i2t, t2i = tie_counts(scores, img2txt, chunk=200)
    best = np.array([scores[i, caps].max() for i, caps in enumerate(img2txt)])
    own_tied = np.array([(scores[i, caps] == best[i]).sum() for i, caps in enumerate(img2txt)])
    assert np.array_equal(i2t.above, (scores > best[:, None]).sum(1))
    assert np.array_equal(i2t.tied + i2t.own_tied, (scores == best[:, None]).sum(1))
    assert np.array_equal(i2t.own_tied, own_tied)
    col = scores[np.arange(1200) // 2, np.arange(1200)]
    assert np.array_equal(t2i.above, (scores > col).sum(0)) and t2i.above.max() > 255
    assert np.array_equal(t2i.tied, (scores == col).sum(0) - 1)
    for chunk in (1, 7, 255, 1000):
        again = tie_counts(scores, img2txt, chunk=chunk)
        assert all(np.array_equal(a, b) for x, y in zip(again, (i2t, t2i)) for a, b in zip(x, y)), chunk


def test_tensor_inputs_give_the_same_metrics():
    scores, img2txt = tied_scores(4, 30, 5)
    want = retrieval_metrics(scores, img2txt)
    assert retrieval_metrics(torch.from_numpy(scores), img2txt) == want
    assert retrieval_metrics(torch.from_numpy(scores).to(torch.bfloat16), img2txt) == want   # 5 levels stay distinct
    assert retrieval_metrics(torch.from_numpy(scores).t().contiguous().t(), img2txt) == want  # non-contiguous


def test_hand_made_ranks():
    # 2 images x 2 captions each; image 0 owns captions 0,1; image 1 owns 2,3
    scores = np.array([[0.9, 0.1, 0.5, 0.2],    # image 0: best own caption 0 at rank 0
                       [0.8, 0.7, 0.6, 0.1]])   # image 1: best own caption 2 (0.6) at rank 2
    m = retrieval_metrics(scores, [[0, 1], [2, 3]])
    assert m["txt_r1"] == 50.0 and m["txt_r5"] == 100.0
    # t2i: caption 0 -> image 0 (0.9 > 0.8) rank 0; caption 1 -> image 0 (0.1 < 0.7) rank 1;
    #      caption 2 -> image 1 (0.6 > 0.5) rank 0; caption 3 -> image 1 (0.1 < 0.2) rank 1
    assert m["img_r1"] == 50.0 and m["img_r5"] == 100.0
    assert m["r_mean"] == pytest.approx((50 + 100 + 100 + 50 + 100 + 100) / 6)


def test_rank_ten_boundary():
    n = 12
    scores = np.zeros((n, n))
    # image 0's only caption (0) is beaten by exactly 10 captions -> rank 10 -> not in R@10
    scores[0, 1:11] = 1.0
    scores[0, 0] = 0.5
    for i in range(1, n):
        scores[i, i] = 2.0
    m = retrieval_metrics(scores, [[i] for i in range(n)])
    assert m["txt_r10"] == pytest.approx(100 * 11 / 12)


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="scores"):
        retrieval_metrics(np.zeros((3, 4)), [[0], [1]])
    with pytest.raises(ValueError, match="belongs to no image"):
        retrieval_metrics(np.zeros((2, 3)), [[0], [1]])
    with pytest.raises(ValueError, match="belongs to several images"):
        retrieval_metrics(np.zeros((2, 2)), [[0, 1], [1]])
    with pytest.raises(ValueError, match="image 1 has no captions"):
        retrieval_metrics(np.zeros((2, 2)), [[0, 1], []])
    with pytest.raises(ValueError, match="out of range"):
        retrieval_metrics(np.zeros((2, 2)), [[0], [2]])
    with pytest.raises(ValueError, match="NaN"):
        retrieval_metrics(np.array([[np.nan, 0.0], [0.0, 1.0]]), [[0], [1]])
    with pytest.raises(ValueError, match="ties"):
        retrieval_metrics(np.eye(2), [[0], [1]], ties="random")
