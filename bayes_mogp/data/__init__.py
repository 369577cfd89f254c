"""Data: MNIST / Fashion-MNIST sources (:mod:`.images`), the supervised-data container (:mod:`.dataset`),
its input/target transforms (:mod:`.transforms`), validators (:mod:`.checks`), file and built-in loaders
(:mod:`.loaders`) and synthetic teacher-network data (:mod:`.synthetic`).

:class:`Dataset` is what every model's ``fit`` takes; build it with :func:`from_arrays`, :func:`load_npz`,
:func:`load_csv` or :func:`from_builtin` (MNIST / Fashion-MNIST on the package's fixed split).
"""

from .images import (  # noqa: F401  (private names re-exported for the tests that patch them)
    _MIRRORS,
    _SHA256,
    DATASETS,
    DEBIAN_FASHION_DIR,
    Split,
    load_dataset,
    mnist_5k_split,
    one_hot,
    preprocess,
    read_idx,
    stratified_subset,
    train_test_split,
)
from .checks import DataError
from .dataset import TASKS, Dataset, as_dataset, from_arrays
from .loaders import from_builtin, load_csv, load_csv_inputs, load_inputs, load_npz
from .transforms import InputTransform, TargetTransform
from .synthetic import TEACHER_ACTIVATIONS, Teacher, teacher_network

__all__ = [
    "DATASETS", "DEBIAN_FASHION_DIR", "Split", "load_dataset", "mnist_5k_split", "one_hot", "preprocess",
    "read_idx", "stratified_subset", "train_test_split",
    "TASKS", "DataError", "Dataset", "as_dataset", "InputTransform", "TargetTransform", "from_arrays", "from_builtin",
    "load_csv", "load_csv_inputs", "load_inputs", "load_npz", "TEACHER_ACTIVATIONS", "Teacher", "teacher_network",
]
