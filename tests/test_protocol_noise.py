"""The ten-digit protocol at other occurrences of the same digits, against independent code."""

import zipfile

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from aeexp import evaluate
from aeexp.errors import UserError
from aeexp.io import readers


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
    assert evaluate.thesis_class_indices(labels, occurrence=1) == evaluate.thesis_class_indices(
        labels
    )
    for k in (1, 2, 3, 7, 20):
        assert evaluate.thesis_class_indices(labels, occurrence=k) == scan(labels.tolist(), k)


def test_occurrence_beyond_the_labels_is_a_one_line_user_error():
    labels = np.repeat(np.arange(10), 3)  # three of each digit, in order
    assert evaluate.thesis_class_indices(labels, occurrence=3) == list(range(2, 30, 3))
    with pytest.raises(UserError, match="no 4th 0 follows index -1") as caught:
        evaluate.thesis_class_indices(labels, occurrence=4)
    assert "\n" not in str(caught.value)
    with pytest.raises(ValueError, match="at least 1"):
        evaluate.thesis_class_indices(labels, occurrence=0)


def test_mnist_has_fifty_occurrences(mnist_path):
    with np.load(mnist_path) as archive:
        labels = archive["y_test"]
    picks = [evaluate.thesis_class_indices(labels, occurrence=k) for k in range(1, 51)]
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


# ------------------------------------------------------------- from a saved model, no retraining


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, mnist_path):
    from fakeruns import train_tiny_run

    return train_tiny_run(tmp_path_factory.mktemp("tiny"), mnist_path)


def test_meter_reads_the_saved_model_and_its_first_pick_is_the_recorded_ssim(tiny_run, tmp_path):
    cv2 = pytest.importorskip("cv2", reason="OpenCV is needed to replay the notebook's imread")
    import keras
    import matplotlib.pyplot as plt

    from aeexp.analysis import protocol
    from aeexp.store import rundir as store
    from aeexp.store.rundir import load_runs

    cfg, run_dir = tiny_run
    metrics = readers.read_json(run_dir / store.METRICS)
    meter = protocol.Meter(occurrences=3)
    measured = meter.model(cfg, run_dir)
    assert measured.values["gray"][0] == pytest.approx(metrics["ssim_thesis"], abs=1e-6)
    assert measured.values["viridis"][0] == pytest.approx(metrics["ssim_thesis_viridis"], abs=1e-6)

    # k = 2 by hand: the model from disk, the files through imsave and OpenCV, skimage's SSIM.
    with np.load(cfg.data.path) as archive:
        x = archive["x_test"][:600].astype("float32") / 255.0
        labels = archive["y_test"][:600]
    model = keras.saving.load_model(run_dir / store.MODEL, compile=False)
    picks = scan(labels.tolist(), 2)
    y = np.asarray(model(x[picks].reshape(-1, 784), training=False)).reshape(-1, 28, 28)

    def png_gray(image, name):
        plt.imsave(tmp_path / f"{name}.png", image, cmap="gray")
        return cv2.imread(str(tmp_path / f"{name}.png"), cv2.IMREAD_GRAYSCALE)

    expected = np.mean(
        [
            structural_similarity(png_gray(x[i], f"x{j}"), png_gray(y[j], f"y{j}"))
            for j, i in enumerate(picks)
        ]
    )
    assert measured.values["gray"][1] == pytest.approx(expected, abs=1e-6)

    noise = meter.noise(load_runs(run_dir.parent), "gray")
    assert noise.n_models == 1 and noise.occurrences == 3
    assert noise.sd == pytest.approx(np.std(measured.values["gray"], ddof=1))
    assert noise.first_offset == pytest.approx(
        measured.values["gray"][0] - np.mean(measured.values["gray"])
    )
    assert meter.model(cfg, run_dir) is measured  # read once


def test_a_run_without_a_saved_model_has_no_protocol_noise(tmp_path):
    from fakeruns import cell_raw, fake_run, run_dir

    from aeexp.analysis import protocol
    from aeexp.store.rundir import load_runs

    cfg = fake_run(tmp_path, cell_raw("relu", "mse", "adam"), ssim_thesis=0.8)
    noise = protocol.Meter().noise(load_runs(run_dir(cfg).parent), "gray")
    assert noise.n_models == 0 and np.isnan(noise.sd)


def test_a_model_saved_compiled_with_an_optimizer_aeexp_no_longer_has_still_loads(tmp_path):
    """A model.keras from before the packages (issue 28) named its optimizer's class by module.

    Saved compiled with a custom optimizer registered under the old module, then read where
    that class does not exist: the protocol's load (compile=False) still reconstructs.
    """
    import keras

    from aeexp.analysis import protocol
    from aeexp.engines.model import build_autoencoder

    @keras.saving.register_keras_serializable(package="aeexp.keras2")
    class Adagrad(keras.optimizers.Adagrad):
        pass

    from aeexp.config.run import ModelConfig

    model = build_autoencoder(ModelConfig(), seed=0)
    model.compile(optimizer=Adagrad(), loss="mse")
    path = tmp_path / "model.keras"
    model.save(path)
    keras.saving.get_custom_objects().pop("aeexp.keras2>Adagrad")
    with zipfile.ZipFile(path) as archive:
        assert b"aeexp.keras2" in archive.read("config.json")
    images = np.random.default_rng(0).random((4, 784)).astype("float32")
    reconstructed = protocol.predict(path, images)
    np.testing.assert_allclose(reconstructed, model.predict(images, verbose=0), rtol=1e-6)
