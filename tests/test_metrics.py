"""Retrieval metrics against a naive per-row sort-and-search reference written here, and hand-made ranks."""
from __future__ import annotations

import numpy as np
import pytest

from harma.metrics import METRIC_KEYS, retrieval_metrics


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


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_naive_reference_on_random_scores(seed):
    rng = np.random.default_rng(seed)
    n_img = 37
    img2txt = [list(range(5 * i, 5 * i + 5)) for i in range(n_img)]
    scores = rng.normal(size=(n_img, 5 * n_img)).astype(np.float32)
    # make some images easy so recalls are not all ~0
    for i in range(0, n_img, 3):
        scores[i, img2txt[i][2]] += 3
        scores[:, img2txt[i][0]] -= 0.5
        scores[i, img2txt[i][0]] += 4
    got = retrieval_metrics(scores, img2txt)
    ref = naive_metrics(scores, img2txt)
    assert list(got) == list(METRIC_KEYS)
    for k in METRIC_KEYS:
        assert got[k] == pytest.approx(ref[k], abs=1e-9), k


def test_chunking_does_not_change_results():
    from harma.metrics import i2t_ranks, t2i_ranks
    import torch

    rng = np.random.default_rng(3)
    img2txt = [list(range(5 * i, 5 * i + 5)) for i in range(50)]
    scores = torch.tensor(rng.normal(size=(50, 250)), dtype=torch.float32)
    assert torch.equal(i2t_ranks(scores, img2txt, chunk=7), i2t_ranks(scores, img2txt, chunk=1000))
    assert torch.equal(t2i_ranks(scores, img2txt, chunk=11), t2i_ranks(scores, img2txt, chunk=1000))


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
