from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

from harma.data import transforms

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def _image(w=40, h=30, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def test_test_transform_resizes_and_normalises_with_clip_stats():
    value = (10, 128, 250)
    out = transforms.test_transform(24)(Image.new("RGB", (50, 31), value))
    assert out.shape == (3, 24, 24) and out.dtype == torch.float32
    for c in range(3):
        assert torch.allclose(out[c], torch.full((24, 24), (value[c] / 255 - MEAN[c]) / STD[c]), atol=1e-5)


def test_test_transform_is_bicubic_resize_to_square():
    img = _image()
    ref = T.functional.resize(img, [16, 16], interpolation=InterpolationMode.BICUBIC)
    ref = (torch.from_numpy(np.array(ref)).permute(2, 0, 1).float() / 255
           - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
    assert torch.allclose(transforms.test_transform(16)(img), ref, atol=1e-5)


def test_train_transform_recipe():
    steps = transforms.train_transform(32).transforms
    assert [type(s) for s in steps] == [T.RandomResizedCrop, T.RandomHorizontalFlip, T.RandAugment, T.ToTensor,
                                        T.Normalize]
    crop, _, aug, _, norm = steps
    assert crop.size == (32, 32) and crop.scale == (0.5, 1.0) and crop.interpolation == InterpolationMode.BICUBIC
    assert aug.num_ops == 2 and aug.magnitude == 7
    assert tuple(norm.mean) == MEAN and tuple(norm.std) == STD


@pytest.mark.parametrize("make", [transforms.train_transform, transforms.test_transform])
def test_transforms_shape_and_pickle(make):
    tf = pickle.loads(pickle.dumps(make(20)))
    out = tf(_image(33, 47))
    assert out.shape == (3, 20, 20) and out.dtype == torch.float32


def test_train_transform_is_random():
    torch.manual_seed(0)
    tf, img = transforms.train_transform(20), _image()
    assert not torch.equal(tf(img), tf(img))
