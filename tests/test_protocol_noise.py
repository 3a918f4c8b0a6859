"""The ten-digit protocol at other occurrences of the same digits, against independent code."""

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from aeexp import evaluate
from aeexp.errors import UserError


def scan(labels, k):
    """The pick written as the plain loop it describes: the k-th next 0, then the k-th next 1..."""
    picked, seen = [], 0
    for index, label in enumerate(labels):
        if len(picked) < 10 and label == len(picked):
            seen += 1
            if seen == k:
                picked.append(index)
                seen = 0
    return picked


def test_occurrence_one_is_the_thesis_pick_and_k_follows_the_loop():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, 3000)
    assert evaluate.thesis_digit_indices(labels, occurrence=1) == evaluate.thesis_digit_indices(
        labels
    )
    for k in (1, 2, 3, 7, 20):
        assert evaluate.thesis_digit_indices(labels, occurrence=k) == scan(labels.tolist(), k)


def test_occurrence_beyond_the_labels_is_a_one_line_user_error():
    labels = np.repeat(np.arange(10), 3)  # three of each digit, in order
    assert evaluate.thesis_digit_indices(labels, occurrence=3) == list(range(2, 30, 3))
    with pytest.raises(UserError, match="no 4th 0 follows index -1") as caught:
        evaluate.thesis_digit_indices(labels, occurrence=4)
    assert "\n" not in str(caught.value)
    with pytest.raises(ValueError, match="at least 1"):
        evaluate.thesis_digit_indices(labels, occurrence=0)


def test_mnist_has_fifty_occurrences(mnist_path):
    with np.load(mnist_path) as archive:
        labels = archive["y_test"]
    picks = [evaluate.thesis_digit_indices(labels, occurrence=k) for k in range(1, 51)]
    assert picks[0] == [3, 5, 35, 44, 48, 52, 54, 60, 61, 62]
    assert picks[49] == scan(labels.tolist(), 50)
    assert len({tuple(p) for p in picks}) == 50


@pytest.mark.parametrize("cmap", ["gray", "viridis"])
def test_occurrence_ssim_matches_imsave_imread_and_skimage(tmp_path, cmap):
    cv2 = pytest.importorskip("cv2", reason="OpenCV is needed to replay the notebook's imread")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(4)
    labels = rng.integers(0, 10, 400)
    x = (rng.integers(0, 256, (400, 28, 28)) / 255).astype(np.float32)
    x[rng.random(x.shape) < 0.8] = 0.0
    y = np.maximum(1.3 * x + rng.normal(0, 0.2, x.shape), 0).astype(np.float32)

    def png_gray(image, name):
        path = tmp_path / f"{name}.png"
        plt.imsave(path, image, cmap=cmap)
        return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)

    occurrences = [1, 2, 3]
    expected = [
        np.mean(
            [
                structural_similarity(png_gray(x[i], f"x{i}"), png_gray(y[i], f"y{i}"))
                for i in scan(labels.tolist(), k)
            ]
        )
        for k in occurrences
    ]
    got = evaluate.ssim_thesis_occurrences(x.reshape(400, 784), y, labels, occurrences, cmap)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    thesis, _ = evaluate.ssim_thesis(x, y, labels, colormap=cmap)
    assert got[0] == pytest.approx(thesis, abs=1e-12)
