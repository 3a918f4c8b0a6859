"""Tests for aeexp.evaluate, each against an independent computation (skimage, files, NumPy)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from aeexp import evaluate
from aeexp.errors import UserError

REPO = Path(__file__).resolve().parents[1]
# Labels whose thesis scan is known by hand: the first 0 is at 1, the first 1 after it at 3, ...
LABELS = np.array([5, 0, 0, 1, 3, 2, 3, 4, 5, 6, 7, 8, 9, 1, 0])
LABEL_INDICES = [1, 3, 5, 6, 7, 8, 9, 10, 11, 12]


def _mnist_like(rng: np.random.Generator, n: int) -> np.ndarray:
    """Float32 k/255 images, mostly exact zeros, as Keras sees MNIST."""
    images = (rng.integers(0, 256, (n, 28, 28)) / 255).astype(np.float32)
    images[rng.random((n, 28, 28)) < 0.8] = 0.0
    return images


def _reconstructions(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """Raw decoder outputs: ReLU-like (above 1), sigmoid-like, linear (negative), exact, flat."""
    noise = rng.normal(0.0, 0.15, x.shape).astype(np.float32)
    relu = np.maximum(1.4 * x + noise, 0.0)
    sigmoid = 1.0 / (1.0 + np.exp(-8.0 * (x + noise - 0.5)))
    linear = x + 2.0 * noise
    out = np.where((np.arange(len(x)) % 3 == 0)[:, None, None], relu, sigmoid)
    out[2::3] = linear[2::3]
    out[1] = x[1]  # a perfect reconstruction
    out[3] = 0.3  # a constant output
    out[7] = 0.0  # a dead ReLU decoder
    return out.astype(np.float32)


def _skimage_ssim(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """One structural_similarity call per image, reconstructions clipped to [0, 1]."""
    pairs = zip(x.astype(np.float64), np.clip(y, 0, 1).astype(np.float64), strict=True)
    return np.array([structural_similarity(a, b, data_range=1.0) for a, b in pairs])


def _scan(labels) -> list[int]:
    """The thesis's digit pick written as the plain loop it describes."""
    picked: list[int] = []
    for index, label in enumerate(labels):
        if len(picked) < 10 and label == len(picked):
            picked.append(index)
    return picked


def test_ssim_per_image_matches_skimage():
    rng = np.random.default_rng(0)
    smooth = rng.random((150, 28, 28)).astype(np.float32)
    x = np.concatenate([_mnist_like(rng, 150), smooth])
    y = _reconstructions(rng, x)
    assert y.max() > 1 and y.min() < 0  # the clip is exercised
    expected = _skimage_ssim(x, y)
    np.testing.assert_allclose(evaluate.ssim_per_image(x, y), expected, rtol=0, atol=1e-6)
    flat = evaluate.ssim_per_image(x.reshape(-1, 784), y.reshape(-1, 784))
    np.testing.assert_allclose(flat, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("cmap", ["gray", "viridis"])
def test_ssim_thesis_matches_imsave_imread_pipeline(tmp_path, cmap):
    cv2 = pytest.importorskip("cv2", reason="OpenCV is needed to replay the notebook's imread")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(1)
    x = _mnist_like(rng, len(LABELS))
    y = _reconstructions(rng, x)
    y[LABEL_INDICES[5]] *= 3.0  # well above 1, as a ReLU decoder can be
    y[LABEL_INDICES[6], 3, 4:9] = [np.nan, np.inf, -np.inf, 2.0, 0.5]  # a diverging model
    # Values on colour-bin edges of a 0..1.3 stretch: float32 and float64 pick different bins.
    edges = np.clip(y[LABEL_INDICES[7]], 0.0, 1.3, out=y[LABEL_INDICES[7]])
    edges[0, 0], edges[0, 1] = 0.0, 1.3
    edges[10] = (np.arange(1, 29) * 1.3 / 256).astype(np.float32)

    def png_gray(image: np.ndarray, name: str) -> np.ndarray:
        path = tmp_path / f"{name}.png"
        # The thesis's matplotlib masked NaN/inf itself inside imsave; today's needs it done.
        plt.imsave(path, np.ma.masked_invalid(image), cmap=cmap)
        return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)

    expected = [
        structural_similarity(png_gray(x[i], f"x{i}"), png_gray(y[i], f"y{i}"))
        for i in LABEL_INDICES
    ]
    mean, per_digit = evaluate.ssim_thesis(x.reshape(-1, 784), y, LABELS, colormap=cmap)
    np.testing.assert_allclose(per_digit, expected, rtol=0, atol=1e-9)
    assert mean == pytest.approx(np.mean(expected), abs=1e-9)


def test_thesis_class_indices_on_mnist(mnist_path):
    with np.load(mnist_path) as archive:
        labels = archive["y_test"]
    indices = evaluate.thesis_class_indices(labels)
    assert indices == _scan(labels.tolist())
    assert indices == [3, 5, 35, 44, 48, 52, 54, 60, 61, 62]
    assert all(isinstance(i, int) for i in indices)


def test_thesis_class_indices_known_and_exhausted():
    assert evaluate.thesis_class_indices(LABELS) == LABEL_INDICES == _scan(LABELS)
    with pytest.raises(UserError, match="no 9 follows index 11") as caught:
        evaluate.thesis_class_indices(LABELS[:12])
    assert "\n" not in str(caught.value)


def test_psnr_and_mse_against_numpy():
    rng = np.random.default_rng(2)
    x = _mnist_like(rng, 30).astype(np.float64)
    y = _reconstructions(rng, x)
    clipped = np.clip(y.astype(np.float64), 0, 1)
    per_image_mse = ((x - clipped) ** 2).reshape(30, -1).mean(axis=1)
    psnr = evaluate.psnr_per_image(x, y)
    finite = per_image_mse > 0
    np.testing.assert_allclose(psnr[finite], 10 * np.log10(1 / per_image_mse[finite]), rtol=1e-12)
    pairs = zip(x[finite], clipped[finite], strict=True)
    skimage_psnr = [peak_signal_noise_ratio(a, b, data_range=1.0) for a, b in pairs]
    np.testing.assert_allclose(psnr[finite], skimage_psnr, rtol=1e-12)
    assert list(psnr[~finite]) == [evaluate.PSNR_CAP_DB]  # image 1 is reconstructed exactly
    assert evaluate.mse(x, y) == pytest.approx(np.mean((x - clipped) ** 2), rel=1e-12)


def test_evaluate_keys_types_and_values():
    rng = np.random.default_rng(3)
    x = _mnist_like(rng, len(LABELS))
    y = _reconstructions(rng, x)
    result = evaluate.evaluate(x, y, LABELS)
    assert set(result) == {
        "ssim_thesis",
        "ssim_thesis_per_digit",
        "ssim_thesis_viridis",
        "ssim_mean",
        "ssim_std",
        "ssim_median",
        "psnr_mean",
        "mse",
    }
    assert json.loads(json.dumps(result)) == result
    assert len(result["ssim_thesis_per_digit"]) == 10
    assert all(type(v) is float for v in result["ssim_thesis_per_digit"])
    assert all(type(v) is float for k, v in result.items() if k != "ssim_thesis_per_digit")
    ssim = _skimage_ssim(x, y)
    assert result["ssim_mean"] == pytest.approx(ssim.mean(), abs=1e-9)
    assert result["ssim_std"] == pytest.approx(ssim.std(), abs=1e-9)
    assert result["ssim_median"] == pytest.approx(np.median(ssim), abs=1e-9)
    assert result["ssim_thesis"] == pytest.approx(np.mean(result["ssim_thesis_per_digit"]))


def test_import_stays_light():
    heavy = "{'matplotlib', 'tensorflow', 'keras', 'scipy'}"
    probe = f"import sys, aeexp.evaluate; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_ssim_per_image_any_size_and_chunk_boundary():
    """Non-square images, and one full chunk of 128 plus a short tail."""
    rng = np.random.default_rng(4)
    x = rng.random((130, 9, 13))
    y = np.clip(x + rng.normal(0.0, 0.2, x.shape), -0.2, 1.3)
    np.testing.assert_allclose(
        evaluate.ssim_per_image(x, y), _skimage_ssim(x, y), rtol=0, atol=1e-6
    )


@pytest.mark.parametrize("workers", [2, 3, 8])
def test_ssim_threads_change_no_bit(workers):
    """Chunks split across threads: every image's SSIM is the single-thread one, exactly."""
    rng = np.random.default_rng(5)
    x = _mnist_like(rng, 3 * 128 + 17)
    y = _reconstructions(rng, x)
    alone = evaluate.ssim_per_image(x, y, workers=1)
    np.testing.assert_array_equal(evaluate.ssim_per_image(x, y, workers=workers), alone)
    np.testing.assert_allclose(alone, _skimage_ssim(x, y), rtol=0, atol=1e-6)


def test_ssim_accepts_images_as_small_as_its_window():
    """7 x 7, the Gaussian window's size, is the smallest image scikit-image measures."""
    rng = np.random.default_rng(6)
    x = rng.random((3, 7, 7))
    y = np.clip(x + rng.normal(0.0, 0.2, x.shape), 0.0, 1.0)
    np.testing.assert_allclose(
        evaluate.ssim_per_image(x, y), _skimage_ssim(x, y), rtol=0, atol=1e-6
    )


@pytest.mark.parametrize(
    ("occurrence", "word"), [(2, "2nd"), (3, "3rd"), (11, "11th"), (21, "21st")]
)
def test_a_missing_later_occurrence_is_named_by_its_ordinal(occurrence, word):
    with pytest.raises(UserError, match=f"no {word} 0 follows index -1"):
        evaluate.thesis_class_indices(np.arange(10), occurrence)


def test_ssim_thesis_occurrences_defaults_to_the_gray_colormap():
    rng = np.random.default_rng(7)
    labels = np.repeat(np.arange(10), 2)
    x = _mnist_like(rng, len(labels))
    y = _reconstructions(rng, x)
    given = evaluate.ssim_thesis_occurrences(x, y, labels, [1, 2], colormap="gray")
    np.testing.assert_array_equal(evaluate.ssim_thesis_occurrences(x, y, labels, [1, 2]), given)
