"""Image transforms of HARMA.md section 8, built from torchvision (nothing reimplemented), in two halves.

The loader half runs on the CPU workers and ends at a uint8 tensor: train `train_pixels` (RandomResizedCrop(S,
scale 0.5-1, bicubic), horizontal flip, RandAugment(2 ops, magnitude 7), PILToTensor), test `test_pixels`
(Resize((S, S), bicubic), PILToTensor); each takes a PIL RGB image and returns a uint8 [3, S, S], a quarter of the
bytes of float32 in the workers' shared memory.  Every step before PILToTensor already works on uint8 PIL images,
so nothing is rounded that was not rounded before.  The device half, `PixelNormalizer`, turns a whole uint8 batch
into CLIP-normalised float32 where the batch lives, with the very operations ToTensor and Normalize use (divide
by 255, subtract the mean, divide by the std; true division by tensors, never a reciprocal), so the loader half
followed by it gives bit for bit what `train_transform` / `test_transform` (the float reference, one image at a
time: ToTensor and Normalize in the worker) give.  Augmentation stays on the workers: torchvision's batch
transforms draw one crop and one RandAugment choice per call, not per image, and need equal-size inputs.
"""
from __future__ import annotations

import torch
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _train_steps(image_size: int) -> list:
    return [T.RandomResizedCrop(image_size, scale=(0.5, 1.0), interpolation=InterpolationMode.BICUBIC),
            T.RandomHorizontalFlip(),
            T.RandAugment(num_ops=2, magnitude=7)]


def _test_steps(image_size: int) -> list:
    return [T.Resize((image_size, image_size), interpolation=InterpolationMode.BICUBIC)]


def train_pixels(image_size: int) -> T.Compose:
    """Random crop/flip/RandAugment on the PIL image; PIL RGB image -> uint8 [3, S, S] (the loader's half)."""
    return T.Compose([*_train_steps(image_size), T.PILToTensor()])


def test_pixels(image_size: int) -> T.Compose:
    """Resize to (S, S) bicubic; PIL RGB image -> uint8 [3, S, S] (the loader's half)."""
    return T.Compose([*_test_steps(image_size), T.PILToTensor()])


def train_transform(image_size: int) -> T.Compose:
    """The float reference: random crop/flip/RandAugment then ToTensor and normalise; -> FloatTensor[3, S, S]."""
    return T.Compose([*_train_steps(image_size), T.ToTensor(), T.Normalize(CLIP_MEAN, CLIP_STD)])


def test_transform(image_size: int) -> T.Compose:
    """The float reference: resize to (S, S) bicubic, ToTensor and normalise; -> FloatTensor[3, S, S]."""
    return T.Compose([*_test_steps(image_size), T.ToTensor(), T.Normalize(CLIP_MEAN, CLIP_STD)])


class PixelNormalizer:
    """uint8 [N, 3, S, S] -> CLIP-normalised float32 on `device`, as ToTensor + Normalize compute it per image."""

    def __init__(self, device: torch.device) -> None:
        # Tensors, not Python numbers: CUDA divides by a CPU scalar as a multiplication by its reciprocal,
        # which can differ from the division ToTensor does in the last bit.
        self.scale = torch.tensor(255.0, device=device)
        self.mean = torch.tensor(CLIP_MEAN, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(CLIP_STD, device=device).view(1, 3, 1, 1)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise TypeError(f"PixelNormalizer: expected a uint8 batch [N, 3, H, W], got {images.dtype} "
                            f"{tuple(images.shape)}")
        return images.to(torch.float32).div_(self.scale).sub_(self.mean).div_(self.std)


# The name starts with "test_": tell pytest it is not a test when a test module imports it.
test_transform.__test__ = False  # type: ignore[attr-defined]
test_pixels.__test__ = False  # type: ignore[attr-defined]
