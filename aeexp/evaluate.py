"""Reconstruction metrics: the thesis's ten-image SSIM protocol and plain per-image metrics.

Pure NumPy. ``ssim_thesis`` reproduces the notebook's measurement bit for bit: each image
went through ``matplotlib.pyplot.imsave`` to a PNG and back through
``cv2.imread(path, cv2.IMREAD_GRAYSCALE)`` before scikit-image's SSIM. Both steps are
emulated here without files:

* imsave stretches the array to its own min..max (in the array's dtype, float32 for Keras
  outputs), maps it to colormap index ``min(floor(256 * t), 255)`` and writes the colormap's
  8-bit RGBA entry. A constant image maps entirely to index 0 (the bottom colour). The
  colormap's byte table truncates, so even the gray map is not the identity: 24 of the 256
  indices land one level lower (index 33 is written as gray 32).
* OpenCV decodes a colour PNG to gray with libpng's ``png_set_rgb_to_gray(0.299, 0.587)``,
  which truncates: ``(9797 R + 19234 G + 3737 B) >> 15``. That is not ``cv2.cvtColor``,
  whose rounding gives a different level for 114 of the 256 viridis colours. Alpha is dropped.

The plain metrics (``ssim_per_image``, ``psnr_per_image``, ``mse``) compare pixels on
[0, 1] with reconstructions clipped to that range, in float64, a cache-sized chunk of images
at a time (the full MNIST test set takes ~60 ms for SSIM, ~10 ms for PSNR and MSE).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from itertools import pairwise
from math import isqrt

import numpy as np

from aeexp.env import host
from aeexp.errors import UserError

__all__ = [
    "PSNR_CAP_DB",
    "evaluate",
    "mse",
    "psnr_per_image",
    "ssim_per_image",
    "ssim_thesis",
    "ssim_thesis_occurrences",
    "thesis_class_indices",
]

# scikit-image's SSIM defaults (then and now): 7x7 uniform window, K1, K2, sample covariance.
_WIN = 7
_K1 = 0.01
_K2 = 0.03
# Images per SSIM step: its ~8 MB of float64 buffers stay in cache (96-200 measured alike,
# 64 is 40% slower: per-call overhead; 512 too: cache misses).
_CHUNK = 128
# Images per float64 chunk of the squared-error pass.
_MSE_CHUNK = 1000
# libpng's fixed-point coefficients for png_set_rgb_to_gray(png, 1, 0.299, 0.587), as OpenCV
# calls it: the weights become 1e-5 fixed point, then 15-bit, truncated; blue gets the rest.
_RED = 29900 * 32768 // 100000
_GREEN = 58700 * 32768 // 100000
_BLUE = 32768 - _RED - _GREEN
# Identical images have infinite PSNR; capping keeps means finite and JSON-serialisable.
PSNR_CAP_DB = 100.0


def thesis_class_indices(labels: np.ndarray, occurrence: int = 1) -> list[int]:
    """Return the indices of the first image of class 0, then the first of class 1 after it, ... 9.

    The thesis's "first occurrence of each digit" is the first occurrence of each class, so
    the rule serves any dataset labelled 0-9. With ``occurrence`` k, each step takes the k-th
    image of the next class after the image chosen before it (k = 1 is the thesis's pick):
    the same rule, other images of the same classes, for measuring how much the ten-image
    protocol depends on which images it picks.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D class indices, got shape {labels.shape}")
    if isinstance(occurrence, bool) or not isinstance(occurrence, int | np.integer):
        raise TypeError(f"occurrence must be an int, got {occurrence!r}")
    if occurrence < 1:
        raise ValueError(f"occurrence must be at least 1, got {occurrence}")
    indices: list[int] = []
    start = 0
    for label in range(10):
        hits = np.flatnonzero(labels[start:] == label)
        if hits.size < occurrence:
            which = "" if occurrence == 1 else f"{_ordinal(occurrence)} "
            raise UserError(
                f"the thesis SSIM needs the classes 0-9 in order in the test labels, but no "
                f"{which}{label} follows index {start - 1} of {labels.size}; use more test images"
            )
        index = start + int(hits[occurrence - 1])
        indices.append(index)
        start = index + 1
    return indices


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def ssim_thesis(
    originals: np.ndarray,
    reconstructions: np.ndarray,
    labels: np.ndarray,
    colormap: str = "gray",
) -> tuple[float, list[float]]:
    """Return the thesis SSIM (mean over the ten digits) and the ten per-digit values."""
    # colormap="gray" is the notebook's run order (plt.gray() came first); "viridis" is what a
    # fresh session would have written.
    originals, reconstructions = _as_images(originals), _as_images(reconstructions)
    _check_pair(originals, reconstructions)
    if len(labels) != len(originals):
        raise ValueError(f"{len(labels)} labels for {len(originals)} images")
    chosen = thesis_class_indices(labels)
    a = _png_roundtrip(originals[chosen], colormap)
    b = _png_roundtrip(reconstructions[chosen], colormap)
    per_digit = _ssim(a.astype(np.float64), b.astype(np.float64), data_range=255.0)
    return float(per_digit.mean()), [float(v) for v in per_digit]


def ssim_thesis_occurrences(
    originals: np.ndarray,
    reconstructions: np.ndarray,
    labels: np.ndarray,
    occurrences: Sequence[int],
    colormap: str = "gray",
) -> np.ndarray:
    """Return the ten-digit thesis SSIM for each occurrence k (the k-th pick of every digit).

    Entry i is what :func:`ssim_thesis` would give had it picked
    ``thesis_class_indices(labels, occurrences[i])``; occurrence 1 is the thesis's value.
    """
    originals, reconstructions = _as_images(originals), _as_images(reconstructions)
    _check_pair(originals, reconstructions)
    if len(labels) != len(originals):
        raise ValueError(f"{len(labels)} labels for {len(originals)} images")
    chosen = [i for k in occurrences for i in thesis_class_indices(labels, k)]
    a = _png_roundtrip(originals[chosen], colormap)
    b = _png_roundtrip(reconstructions[chosen], colormap)
    per_digit = _ssim(a.astype(np.float64), b.astype(np.float64), data_range=255.0)
    return per_digit.reshape(len(occurrences), 10).mean(axis=1)


def ssim_per_image(
    originals: np.ndarray, reconstructions: np.ndarray, workers: int | None = None
) -> np.ndarray:
    """Return SSIM (data range 1) of every image against its reconstruction clipped to [0, 1].

    ``workers`` threads share the images (default: the CPUs this process may run on); how
    many changes no bit of the result.
    """
    x, y = _as_images(originals), _as_images(reconstructions)
    _check_pair(x, y)
    # No float64 copy of the whole batch: each chunk is converted (and clipped) in cache.
    return _ssim(x, y, data_range=1.0, clip=True, workers=workers)


def psnr_per_image(originals: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """Return PSNR in dB (data range 1, clipped reconstructions), capped at ``PSNR_CAP_DB``."""
    return _psnr(_image_mse(originals, reconstructions))


def mse(originals: np.ndarray, reconstructions: np.ndarray) -> float:
    """Return the mean squared error over all pixels, reconstructions clipped to [0, 1]."""
    # Every image has the same pixel count, so the mean of the per-image means is the mean.
    return float(np.mean(_image_mse(originals, reconstructions)))


def evaluate(
    originals: np.ndarray, reconstructions: np.ndarray, labels: np.ndarray
) -> dict[str, float | list[float]]:
    """Return every metric of the project as plain, JSON-serialisable Python numbers."""
    thesis, per_digit = ssim_thesis(originals, reconstructions, labels)
    viridis, _ = ssim_thesis(originals, reconstructions, labels, colormap="viridis")
    ssim = ssim_per_image(originals, reconstructions)
    errors = _image_mse(originals, reconstructions)
    return {
        "ssim_thesis": thesis,
        "ssim_thesis_per_digit": per_digit,
        "ssim_thesis_viridis": viridis,
        "ssim_mean": float(ssim.mean()),
        "ssim_std": float(ssim.std()),  # population std (ddof=0) over the test images
        "ssim_median": float(np.median(ssim)),
        "psnr_mean": float(_psnr(errors).mean()),
        "mse": float(errors.mean()),
    }


def _as_images(a: np.ndarray) -> np.ndarray:
    """View a batch as (n, h, w); flat rows (n, h*w) must be square images."""
    a = np.asarray(a)
    if a.ndim == 2:
        side = isqrt(a.shape[1])
        if side * side != a.shape[1]:
            raise ValueError(f"flat images need a square pixel count, got {a.shape[1]}")
        a = a.reshape(len(a), side, side)
    if a.ndim != 3 or min(a.shape[1:]) < _WIN:
        raise ValueError(f"expected (n, h, w) images of at least {_WIN}x{_WIN}, got {a.shape}")
    return a


def _check_pair(originals: np.ndarray, reconstructions: np.ndarray) -> None:
    """Refuse batches that do not pair up image by image."""
    if originals.shape != reconstructions.shape:
        raise ValueError(f"shape mismatch: {originals.shape} vs {reconstructions.shape}")


def _image_mse(originals: np.ndarray, reconstructions: np.ndarray) -> np.ndarray:
    """Return each image's mean squared error, in float64, reconstructions clipped to [0, 1]."""
    x, y = _as_images(originals), _as_images(reconstructions)
    _check_pair(x, y)
    out = np.empty(len(x))
    # Chunks keep the float64 copies in cache instead of two batch-sized arrays.
    for start in range(0, len(x), _MSE_CHUNK):
        part = slice(start, start + _MSE_CHUNK)
        diff = x[part].astype(np.float64) - np.clip(y[part].astype(np.float64), 0.0, 1.0)
        flat = diff.reshape(len(diff), -1)
        out[part] = np.einsum("ij,ij->i", flat, flat) / flat.shape[1]
    return out


def _psnr(image_mse: np.ndarray) -> np.ndarray:
    """Return PSNR in dB (data range 1) from per-image MSE, capped at ``PSNR_CAP_DB``."""
    # The floor on the error is the cap: an exact reconstruction scores PSNR_CAP_DB, not inf.
    return 10.0 * np.log10(1.0 / np.maximum(image_mse, 10.0 ** (-PSNR_CAP_DB / 10.0)))


def _ssim(
    x: np.ndarray, y: np.ndarray, data_range: float, clip: bool = False, workers: int | None = None
) -> np.ndarray:
    """Return skimage's default SSIM of each (n, h, w) pair in float64, ``y`` clipped if asked."""
    n = len(x)
    out = np.empty(n)
    starts = list(range(0, n, _CHUNK))
    threads = host.usable_cpus() if workers is None else workers
    shares = [share for share in np.array_split(starts, threads) if share.size]

    def fill(share: np.ndarray) -> None:
        # Images are independent, so which thread fills which chunk changes no bit of out.
        kernels: dict[int, _SsimKernel] = {}
        for start in share:
            part = slice(start, min(start + _CHUNK, n))
            size = part.stop - part.start
            if size not in kernels:
                kernels[size] = _SsimKernel(*x.shape[1:], size, data_range, clip)
            out[part] = kernels[size](x[part], y[part])

    if len(shares) == 1:
        fill(shares[0])
    else:
        # NumPy releases the GIL inside each ufunc loop, so the threads share no lock.
        with ThreadPoolExecutor(len(shares)) as pool:
            list(pool.map(fill, shares))
    return out


class _SsimKernel:
    """SSIM of a fixed number of images, with every buffer and view made once.

    Reusing the buffers avoids page faults on fresh multi-MB arrays, and making the ~100
    views once avoids indexing costs that would otherwise rival the arithmetic.

    skimage computes, per 7x7 window of N pixels with sample covariances,
    ``(2 ux uy + c1)(2 vxy + c2) / ((ux^2 + uy^2 + c1)(vx + vy + c2))``. In window sums S
    of u = x + y and v = x - y (a = Su^2, b = Sv^2) that is, exactly,
    ``(a - b + 2 N^2 c1)(g - h) / ((a + b + 2 N^2 c1)(g + h))`` with
    ``g = N Suu - a + 2 N (N-1) c2`` and ``h = N Svv - b``: four filtered maps, not five,
    and fewer operations on each window.
    """

    def __init__(self, h: int, w: int, n: int, data_range: float, clip: bool) -> None:
        rows, cols, area = h - _WIN + 1, w - _WIN + 1, _WIN**2  # full windows per axis
        self.clip = clip
        self.c1 = 2 * (_K1 * data_range * area) ** 2
        self.c2 = 2 * (_K2 * data_range) ** 2 * area * (area - 1)
        # Layout (h, map, w, image): each running-sum step below is one contiguous block.
        self.maps = np.empty((h, 4, w, n))
        self.u, self.u2, self.v, self.v2 = (self.maps[:, k] for k in range(4))
        self.map_rows = list(self.maps)
        # The column pass reads a transposed (w, map, h', image) buffer, for the same reason.
        self.cols = np.empty((w, 4, rows, n))
        self.col_rows = list(self.cols)
        self.by_row = self.cols.transpose(2, 1, 0, 3)
        # Map-major sums: the ~15 elementwise steps of ``_combine`` each run over one block.
        self.sums = np.empty((4, cols, rows, n))
        self.box = self.sums.transpose(1, 0, 2, 3)
        self.tmp = np.empty((cols, rows, n))

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Return SSIM of the (n, h, w) batches ``x`` and ``y``."""
        u, u2, v, v2 = self.u, self.u2, self.v, self.v2
        u[...] = x.transpose(1, 2, 0)
        if self.clip:
            np.clip(y.transpose(1, 2, 0), 0.0, 1.0, out=u2)
        else:
            u2[...] = y.transpose(1, 2, 0)
        np.subtract(u, u2, out=v)
        u += u2
        np.multiply(u, u, out=u2)
        np.multiply(v, v, out=v2)
        self._window_sums()
        return self._combine()

    def _window_sums(self) -> None:
        """Fill ``box`` with the sums of every full 7x7 window of the four maps.

        skimage filters the whole image with reflected edges and then drops a (7-1)//2
        border, which leaves exactly the windows that lie fully inside the image: only those
        are computed, as differences of running sums along each axis (in float64 the
        cancellation stays ~1e-15). The maps are overwritten with their running sums.
        """
        for prev, row in pairwise(self.map_rows):
            np.add(row, prev, out=row)
        self.by_row[0] = self.maps[_WIN - 1]
        np.subtract(self.maps[_WIN:], self.maps[:-_WIN], out=self.by_row[1:])
        for prev, row in pairwise(self.col_rows):
            np.add(row, prev, out=row)
        self.box[0] = self.cols[_WIN - 1]
        np.subtract(self.cols[_WIN:], self.cols[:-_WIN], out=self.box[1:])

    def _combine(self) -> np.ndarray:
        """Return each image's mean SSIM over its windows, from the window sums."""
        su, suu, sv, svv = self.sums
        tmp, area = self.tmp, _WIN**2
        # In place, so nothing is allocated per chunk.
        np.multiply(su, su, out=su)  # a
        np.multiply(sv, sv, out=sv)  # b
        suu *= area
        suu -= su
        suu += self.c2  # g
        svv *= area
        svv -= sv  # h
        np.subtract(suu, svv, out=tmp)  # g - h
        suu += svv  # g + h
        su += self.c1
        np.subtract(su, sv, out=svv)  # a - b + c1
        su += sv  # a + b + c1
        tmp *= svv
        suu *= su
        tmp /= suu
        return tmp.sum(axis=(0, 1)) / (tmp.shape[0] * tmp.shape[1])


def _png_roundtrip(images: np.ndarray, colormap: str) -> np.ndarray:
    """Return the uint8 (n, h, w) that imsave-to-PNG then OpenCV gray read would give."""
    table = _colormap_bytes(colormap)
    rgb = table[_colormap_indices(images, len(table) - 1)][..., :3].astype(np.uint32)
    gray = (_RED * rgb[..., 0] + _GREEN * rgb[..., 1] + _BLUE * rgb[..., 2]) >> 15
    return gray.astype(np.uint8)


def _colormap_indices(images: np.ndarray, n_colors: int) -> np.ndarray:
    """Return the colormap row imsave picks per pixel; non-finite pixels get row n_colors (bad).

    Mirrors Normalize + Colormap: stretch in the input's float dtype (ints as matplotlib
    promotes them), index ``min(floor(N * t), N - 1)``, constant images at index 0. As in
    the thesis's matplotlib (imsave masked invalid values), NaN/inf pixels are left out of
    the min..max and drawn in the bad colour.
    """
    dtype = images.dtype if images.dtype.kind == "f" else np.promote_types(images.dtype, "f4")
    x = images.astype(dtype)
    finite = np.isfinite(x)
    lo = np.where(finite, x, np.inf).min(axis=(1, 2), keepdims=True).astype(dtype)
    hi = np.where(finite, x, -np.inf).max(axis=(1, 2), keepdims=True).astype(dtype)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        t = (x - lo) / (hi - lo)
        t = np.where(hi > lo, t, 0)
        index = np.minimum(np.floor(t * dtype.type(n_colors)), n_colors - 1)
    return np.where(finite, index, n_colors).astype(np.intp)


@lru_cache(maxsize=8)
def _colormap_bytes(name: str) -> np.ndarray:
    """Return the colormap's (N + 1, 4) uint8 table as imsave writes it; the last row is bad."""
    from matplotlib import colormaps  # lazy: keeps `import aeexp.evaluate` fast

    cmap = colormaps[name]
    # Integer input indexes the table directly; the masked entry yields the "bad" colour.
    rows = np.ma.masked_array(np.arange(cmap.N + 1), mask=np.arange(cmap.N + 1) == cmap.N)
    return cmap(rows, bytes=True)
