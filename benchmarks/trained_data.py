"""Real photographs for the trained-network benchmark: grayscale crops of one field of view, block-averaged to a
resolution, with a held-out split.

Images: the 13 photographs that ship inside scikit-learn 1.9.1 (``load_sample_images``: ``china``, ``flower``) and
scikit-image 0.26.0 (``skimage.data``: ``astronaut``, ``brick``, ``camera``, ``chelsea``, ``clock``, ``coffee``,
``coins``, ``grass``, ``gravel``, ``moon``, ``rocket``); no download. Documents, logos, synthetic, binary,
microscopy and astronomy images of ``skimage.data`` are left out: they are not photographs of scenes.

Grayscale (ITU-R 601 luma) because 7 of the 13 are grayscale, and one channel keeps the networks small and the
fitted Gaussian field a single spectrum.

A crop is a ``FOV x FOV`` (128) square at the image's native resolution, block-averaged by ``FOV / resolution``
(resolution 8, 16, 32 or 64), so every resolution sees the same field of view. The held-out split is spatial:
the right-most ``HELD_OUT_FRACTION`` of each image's columns; training crops lie entirely left of it, held-out
crops entirely inside it. Pixels are scaled to ``(luma - MEAN) / STD`` with the training region's mean and
standard deviation (zero mean, unit variance: the normalisation a latent's ``shift_factor`` and
``scaling_factor`` perform), so the data model the fitted Gaussian field assumes (zero mean) holds.
"""

from __future__ import annotations

import warnings

import numpy as np

FOV = 128
RESOLUTIONS = (8, 16, 32, 64)
HELD_OUT_FRACTION = 0.35
SKIMAGE_NAMES = (
    "astronaut", "brick", "camera", "chelsea", "clock", "coffee", "coins", "grass", "gravel", "moon", "rocket",
)
SKLEARN_NAMES = ("china", "flower")


def _luma(img: np.ndarray) -> np.ndarray:
    """uint8 gray or RGB(A) -> float64 luma in [0, 1] (ITU-R BT.601 weights)."""
    x = img.astype(np.float64) / 255.0
    if x.ndim == 3:
        x = x[..., :3] @ np.array([0.299, 0.587, 0.114])
    return x


def load_images() -> dict[str, np.ndarray]:
    """The 13 photographs as float64 luma ``[H, W]`` in [0, 1], by name (sorted)."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in SKIMAGE_NAMES:
            out[name] = _luma(getattr(skimage.data, name)())
        sample = load_sample_images()
    for path, img in zip(sample.filenames, sample.images, strict=True):
        name = path.replace("\\", "/").rsplit("/", 1)[-1].split(".")[0]
        if name in SKLEARN_NAMES:
            out[name] = _luma(img)
    return dict(sorted(out.items()))


def split(images: dict[str, np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(training regions, held-out regions): each image cut at ``1 - HELD_OUT_FRACTION`` of its width."""
    train, held = [], []
    for img in images.values():
        cut = int(round(img.shape[1] * (1.0 - HELD_OUT_FRACTION)))
        train.append(img[:, :cut])
        held.append(img[:, cut:])
    for region in train + held:
        if min(region.shape) < FOV:
            raise ValueError(f"a region of shape {region.shape} is smaller than the field of view {FOV}")
    return train, held


def normalisation(train_regions: list[np.ndarray]) -> tuple[float, float]:
    """Mean and standard deviation of the luma over all training pixels (each region weighted by its area)."""
    flat = np.concatenate([r.ravel() for r in train_regions])
    return float(flat.mean()), float(flat.std())


def block_average(x: np.ndarray, resolution: int) -> np.ndarray:
    """``[..., FOV, FOV] -> [..., resolution, resolution]`` by averaging ``FOV / resolution`` square blocks."""
    f = x.shape[-1] // resolution
    if x.shape[-1] != f * resolution or x.shape[-2] != x.shape[-1]:
        raise ValueError(f"cannot block-average shape {x.shape} to {resolution}")
    return x.reshape(*x.shape[:-2], resolution, f, resolution, f).mean(axis=(-3, -1))


def random_crops(regions: list[np.ndarray], n: int, rng: np.random.Generator, *, flip: bool) -> np.ndarray:
    """``n`` crops ``[n, FOV, FOV]``: each picks an image uniformly, then a uniform position inside its region;
    with ``flip`` a random horizontal flip (half of them)."""
    out = np.empty((n, FOV, FOV))
    which = rng.integers(0, len(regions), n)
    for i, k in enumerate(which):
        r = regions[k]
        y = rng.integers(0, r.shape[0] - FOV + 1)
        x = rng.integers(0, r.shape[1] - FOV + 1)
        out[i] = r[y : y + FOV, x : x + FOV]
    if flip:
        mask = rng.random(n) < 0.5
        out[mask] = out[mask, :, ::-1]
    return out


class CropSource:
    """Normalised crops at one resolution, ``[n, 1, resolution, resolution]`` float32.

    ``train(n, rng)`` draws fresh training crops (random positions and flips); ``held_out(n, seed)`` a fixed set of
    held-out crops (no flips); ``train_fixed(n, seed)`` a fixed training set (for fitting a spectrum).
    """

    def __init__(self, resolution: int) -> None:
        if resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {RESOLUTIONS}, got {resolution}")
        self.resolution = resolution
        self.names = list(load_images())
        self.train_regions, self.held_regions = split(load_images())
        self.mean, self.std = normalisation(self.train_regions)

    def _prepare(self, crops: np.ndarray) -> np.ndarray:
        x = (block_average(crops, self.resolution) - self.mean) / self.std
        return x[:, None].astype(np.float32)

    def train(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self._prepare(random_crops(self.train_regions, n, rng, flip=True))

    def train_fixed(self, n: int, seed: int) -> np.ndarray:
        return self.train(n, np.random.default_rng([seed, 1]))

    def held_out(self, n: int, seed: int) -> np.ndarray:
        return self._prepare(random_crops(self.held_regions, n, np.random.default_rng([seed, 2]), flip=False))
