"""Losses against hand-computed 2x2 / 3x3 cases and small references written here."""
from __future__ import annotations

import math

import pytest
import torch

from harma.config import LossConfig
from harma.losses import affiliation_loss, contrastive_loss, harma_loss, weighted_triplet_loss


def pair_with_scores(scores):
    """img = identity, txt = scoresᵀ, so img @ txtᵀ == scores exactly."""
    s = torch.tensor(scores, dtype=torch.float64)
    return torch.eye(len(s), dtype=torch.float64), s.t().clone()


def test_triplet_2x2_hand_computed():
    img, txt = pair_with_scores([[1.0, 0.5], [0.9, 1.0]])
    # only off-diagonal violations: c_s[1,0] = 0.2 + 0.9 - 1 = 0.1 and c_im[1,0] = 0.2 + 0.9 - 1.0 = 0.1
    w = (1 - math.exp(-0.1)) ** 2
    expected = (w * 0.1 + w * 0.1) / 2
    assert float(weighted_triplet_loss(img, txt, 0.2, 2.0)) == pytest.approx(expected, rel=1e-9)
    assert float(weighted_triplet_loss(img, txt, 0.2, 0.0)) == pytest.approx(0.1, rel=1e-9)


def test_triplet_3x3_gamma_zero_is_summed_hinge_and_max_violation():
    scores = [[0.9, 0.8, 0.1], [0.3, 0.5, 0.6], [0.7, 0.2, 0.8]]
    img, txt = pair_with_scores(scores)
    m = 0.2
    c_s = [[max(0, m + scores[i][j] - scores[i][i]) if i != j else 0 for j in range(3)] for i in range(3)]
    c_im = [[max(0, m + scores[i][j] - scores[j][j]) if i != j else 0 for j in range(3)] for i in range(3)]
    hinge = (sum(map(sum, c_s)) + sum(map(sum, c_im))) / 2
    assert float(weighted_triplet_loss(img, txt, m, 0.0)) == pytest.approx(hinge, rel=1e-9)
    focal = sum((1 - math.exp(-c)) ** 1.5 * c for row in c_s + c_im for c in row) / 2
    assert float(weighted_triplet_loss(img, txt, m, 1.5)) == pytest.approx(focal, rel=1e-9)
    hard_s = [max(row) for row in c_s]
    hard_im = [max(c_im[i][j] for i in range(3)) for j in range(3)]
    assert float(weighted_triplet_loss(img, txt, m, 0.0, max_violation=True)) == pytest.approx(
        (sum(hard_s) + sum(hard_im)) / 2, rel=1e-9)


def test_triplet_weight_carries_gradient():
    img, txt = pair_with_scores([[1.0, 0.5], [0.9, 1.0]])
    txt.requires_grad_(True)
    weighted_triplet_loss(img, txt, 0.2, 2.0).backward()
    # d/dc [(1-e^-c)^2 c] = (1-e^-c)^2 + 2c(1-e^-c)e^-c at c = 0.1; c depends on S[1,0] (=txt[0,1]) with +1 twice
    c = 0.1
    dc = (1 - math.exp(-c)) ** 2 + 2 * c * (1 - math.exp(-c)) * math.exp(-c)
    assert float(txt.grad[0, 1]) == pytest.approx(2 * dc / 2, rel=1e-6)


def test_contrastive_2x2_plain_infonce():
    img, txt = pair_with_scores([[1.0, 0.5], [0.9, 1.0]])
    expected = (math.log(1 + math.exp(-0.5)) + math.log(1 + math.exp(-0.1))) / 2
    assert float(contrastive_loss(img, txt, 1.0)) == pytest.approx(expected, rel=1e-9)
    t = 0.07
    rows = (math.log(1 + math.exp(-0.5 / t)) + math.log(1 + math.exp(-0.1 / t))) / 2
    assert float(contrastive_loss(img, txt, torch.tensor(t, dtype=torch.float64))) == pytest.approx(rows, rel=1e-6)


def test_contrastive_soft_targets_with_repeated_ids():
    scores = [[1.0, 0.4, 0.2], [0.6, 0.9, 0.1], [0.3, 0.2, 0.8]]
    img, txt = pair_with_scores(scores)
    ids = torch.tensor([5, 5, 9])
    P = [[0.5, 0.5, 0], [0.5, 0.5, 0], [0, 0, 1]]

    def ce(mat):
        total = 0.0
        for i in range(3):
            z = math.log(sum(math.exp(v) for v in mat[i]))
            total += -sum(P[i][j] * (mat[i][j] - z) for j in range(3))
        return total / 3

    transposed = [[scores[j][i] for j in range(3)] for i in range(3)]
    expected = (ce(scores) + ce(transposed)) / 2
    assert float(contrastive_loss(img, txt, 1.0, ids)) == pytest.approx(expected, rel=1e-9)
    assert float(contrastive_loss(img, txt, 1.0, torch.tensor([1, 2, 3]))) == pytest.approx(
        float(contrastive_loss(img, txt, 1.0)), rel=1e-12)


def test_affiliation_pulls_toward_class_centres():
    img = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], dtype=torch.float64)
    txt = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    labels = torch.tensor([4, 4, 7])
    # text centres: class 4 -> (1, 0), class 7 -> (0, 1); image centres: class 4 -> normalise(1.8, 0.6)
    c4 = torch.tensor([1.8, 0.6], dtype=torch.float64)
    c4 = c4 / c4.norm()
    t = 0.5

    def ce(logits, target):
        return -logits[target] + math.log(sum(math.exp(v) for v in logits))

    i2t = sum(ce([float(img[i] @ torch.tensor([1.0, 0.0], dtype=torch.float64)) / t,
                  float(img[i] @ torch.tensor([0.0, 1.0], dtype=torch.float64)) / t], k)
              for i, k in zip(range(3), [0, 0, 1])) / 3
    t2i = sum(ce([float(txt[i] @ c4) / t, float(txt[i] @ torch.tensor([0.0, 1.0], dtype=torch.float64)) / t], k)
              for i, k in zip(range(3), [0, 0, 1])) / 3
    assert float(affiliation_loss(img, txt, labels, t)) == pytest.approx((i2t + t2i) / 2, rel=1e-9)
    assert float(affiliation_loss(img, txt, torch.tensor([1, 1, 1]), t)) == 0.0


def test_mix_uses_config_weights():
    g = torch.Generator().manual_seed(0)
    img = torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=-1)
    txt = torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=-1)
    ids, labels = torch.tensor([0, 0, 1, 2, 2, 3]), torch.tensor([0, 0, 1, 1, 0, 1])
    cfg = LossConfig(w_contr=0.5, w_triplet=2.0, w_affil=0.25)
    parts = harma_loss(img, txt, torch.tensor(0.07), ids, labels, cfg)
    expected = 0.5 * contrastive_loss(img, txt, 0.07, ids) + 2.0 * weighted_triplet_loss(img, txt) \
        + 0.25 * affiliation_loss(img, txt, labels, 0.1)
    torch.testing.assert_close(parts["loss"], expected)
    only = harma_loss(img, txt, torch.tensor(0.07), ids, labels, LossConfig(w_contr=0.0))
    assert set(only) == {"triplet", "loss"}


def _affiliation_with_unique(img, txt, labels, temp):
    """The formulation with `torch.unique` (a host read on CUDA), compact [C] shapes: the reference."""
    classes, index = torch.unique(labels, return_inverse=True)
    if len(classes) < 2:
        return img.sum() * 0 + txt.sum() * 0

    def centres(emb):
        sums = torch.zeros(len(classes), emb.shape[1], dtype=emb.dtype).index_add(0, index, emb)
        return torch.nn.functional.normalize(sums, dim=-1)

    ce = torch.nn.functional.cross_entropy
    return (ce(img @ centres(txt).t() / temp, index) + ce(txt @ centres(img).t() / temp, index)) / 2


@pytest.mark.parametrize("batch,classes", [(8, 3), (32, 5), (214, 33), (64, 64), (16, 1), (16, 2)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fixed_size_affiliation_equals_the_unique_formulation(batch, classes, dtype):
    from harma.losses import class_ranks

    g = torch.Generator().manual_seed(batch + classes)
    img = torch.nn.functional.normalize(torch.randn(batch, 24, generator=g, dtype=dtype), dim=-1).requires_grad_()
    txt = torch.nn.functional.normalize(torch.randn(batch, 24, generator=g, dtype=dtype), dim=-1).requires_grad_()
    labels = torch.randint(0, classes, (batch,), generator=g) * 7 + 3      # sparse, unordered label values
    present, inverse = torch.unique(labels, return_inverse=True)
    ranks, count = class_ranks(labels)
    assert torch.equal(ranks, inverse) and int(count) == len(present)
    got, want = affiliation_loss(img, txt, labels, 0.1), _affiliation_with_unique(img, txt, labels, 0.1)
    # the same sums in the same order; the softmax over the padded row may round its last bit differently
    torch.testing.assert_close(got, want, rtol=4 * torch.finfo(dtype).eps, atol=0.0)
    for g_got, g_want in zip(torch.autograd.grad(got, (img, txt)), torch.autograd.grad(want, (img, txt))):
        assert torch.isfinite(g_got).all()
        torch.testing.assert_close(g_got, g_want, rtol=1e-6 if dtype == torch.float32 else 1e-14,
                                   atol=8 * torch.finfo(dtype).eps)
