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


@pytest.mark.parametrize("make,dtype", [(transforms.train_transform, torch.float32),
                                        (transforms.test_transform, torch.float32),
                                        (transforms.train_pixels, torch.uint8), (transforms.test_pixels, torch.uint8)])
def test_transforms_shape_and_pickle(make, dtype):
    tf = pickle.loads(pickle.dumps(make(20)))
    out = tf(_image(33, 47))
    assert out.shape == (3, 20, 20) and out.dtype == dtype


def test_the_loader_half_is_the_recipe_up_to_a_uint8_tensor():
    train = [type(s) for s in transforms.train_pixels(32).transforms]
    assert train == [T.RandomResizedCrop, T.RandomHorizontalFlip, T.RandAugment, T.PILToTensor]
    assert [type(s) for s in transforms.test_pixels(32).transforms] == [T.Resize, T.PILToTensor]
    crop, _, aug, _ = transforms.train_pixels(32).transforms
    assert crop.scale == (0.5, 1.0) and crop.interpolation == InterpolationMode.BICUBIC and aug.magnitude == 7


def test_device_normalisation_of_every_uint8_value_is_totensor_and_normalize_bit_for_bit():
    values = np.arange(256, dtype=np.uint8).reshape(16, 16)
    img = Image.fromarray(np.stack([values, values[::-1], values.T], axis=-1), "RGB")
    reference = T.Normalize(MEAN, STD)(T.ToTensor()(img))
    batch = T.PILToTensor()(img)[None].repeat(3, 1, 1, 1)
    out = transforms.PixelNormalizer(torch.device("cpu"))(batch)
    assert out.dtype == torch.float32 and out.shape == (3, 3, 16, 16)
    assert all(torch.equal(o, reference) for o in out)


def _assorted(n: int) -> list[Image.Image]:
    rng = np.random.default_rng(1)
    return [_image(int(rng.integers(20, 300)), int(rng.integers(20, 300)), seed=i) for i in range(n)]


@pytest.mark.parametrize("size", [24, 224])
def test_eval_images_normalised_on_the_device_equal_the_float_path_bit_for_bit(size):
    """The bound is 0: Resize already returns a uint8 image, so stopping there rounds nothing new."""
    images = _assorted(12)
    old = torch.stack([transforms.test_transform(size)(img) for img in images])
    new = transforms.PixelNormalizer(torch.device("cpu"))(torch.stack([transforms.test_pixels(size)(img)
                                                                       for img in images]))
    assert torch.equal(new, old)


def test_train_images_normalised_on_the_device_equal_the_float_path_draw_for_draw():
    """Same seed, same draws (crop, flip, RandAugment ops): the same tensors, so the same distribution (per-channel
    mean and std over 3 x 40 draws equal exactly, not just within sampling noise)."""
    images, old, new = _assorted(40), [], []
    for seed in range(3):
        torch.manual_seed(seed)
        old += [transforms.train_transform(48)(img) for img in images]
        torch.manual_seed(seed)
        new.append(transforms.PixelNormalizer(torch.device("cpu"))(
            torch.stack([transforms.train_pixels(48)(img) for img in images])))
    old_t, new_t = torch.stack(old), torch.cat(new)
    assert torch.equal(new_t, old_t)
    assert not torch.equal(new_t[:40], new_t[40:80])                         # the draws differ by seed
    per_channel = (0, 2, 3)
    assert torch.equal(new_t.mean(per_channel), old_t.mean(per_channel))
    assert torch.equal(new_t.std(per_channel), old_t.std(per_channel))


def test_device_normalisation_refuses_what_is_not_a_uint8_batch():
    norm = transforms.PixelNormalizer(torch.device("cpu"))
    for bad in (torch.zeros(2, 3, 4, 4), torch.zeros(3, 4, 4, dtype=torch.uint8),
                torch.zeros(2, 1, 4, 4, dtype=torch.uint8)):
        with pytest.raises(TypeError, match="expected a uint8 batch"):
            norm(bad)


def test_train_transform_is_random():
    torch.manual_seed(0)
    tf, img = transforms.train_transform(20), _image()
    assert not torch.equal(tf(img), tf(img))
