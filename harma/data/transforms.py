"""Image transforms of HARMA.md section 8, built from torchvision (nothing reimplemented).

Train: RandomResizedCrop(S, scale 0.5-1, bicubic), horizontal flip, RandAugment(2 ops, magnitude 7),
ToTensor, CLIP mean/std normalisation.  Test: Resize((S, S), bicubic), ToTensor, normalisation.  Both take a
PIL RGB image and return a FloatTensor[3, S, S]; both are picklable (DataLoader workers).
"""
from __future__ import annotations

from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def train_transform(image_size: int) -> T.Compose:
    """Random crop/flip/RandAugment then normalise; PIL RGB image -> FloatTensor[3, S, S]."""
    return T.Compose([
        T.RandomResizedCrop(image_size, scale=(0.5, 1.0), interpolation=InterpolationMode.BICUBIC),
        T.RandomHorizontalFlip(),
        T.RandAugment(num_ops=2, magnitude=7),
        T.ToTensor(),
        T.Normalize(CLIP_MEAN, CLIP_STD),
    ])


def test_transform(image_size: int) -> T.Compose:
    """Resize to (S, S) bicubic then normalise; PIL RGB image -> FloatTensor[3, S, S]."""
    return T.Compose([
        T.Resize((image_size, image_size), interpolation=InterpolationMode.BICUBIC),
        T.ToTensor(),
        T.Normalize(CLIP_MEAN, CLIP_STD),
    ])


# The name starts with "test_": tell pytest it is not a test when a test module imports it.
test_transform.__test__ = False  # type: ignore[attr-defined]
