"""Atomic writes, so that nothing a run has written is lost or half-written when a later step fails, and the
one reader of ``.npz`` files (data, checkpoints, run folders), which never unpickles.

Every file is written to a temporary sibling and moved into place with :func:`os.replace`, which is
atomic on POSIX file systems.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import InputError

__all__ = ["atomic_path", "atomic_write_text", "atomic_write_json", "atomic_save_npz", "read_npz", "read_json", "to_jsonable"]


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def to_jsonable(obj: Any) -> Any:
    """Convert NumPy/JAX scalars and arrays (recursively) to plain JSON types; NaN/Inf become None."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (str, bool)) or obj is None:
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if hasattr(obj, "__array__") or isinstance(obj, np.generic):
        arr = np.asarray(obj)
        if arr.dtype == bool:
            return arr.tolist()
        if arr.ndim == 0:
            item = arr.item()
            return to_jsonable(item)
        return [to_jsonable(v) for v in arr.tolist()]
    return obj


def json_line(obj: Any, *, default=None) -> str:
    """``obj`` as one line of strict JSON (:func:`to_jsonable` first: NaN/Inf become null, and a value that
    would still not be JSON raises); ``default`` as in :func:`json.dumps`."""
    return json.dumps(to_jsonable(obj), allow_nan=False, default=default)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=False) + "\n")


def atomic_save_npz(path: str | os.PathLike, **arrays) -> Path:
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a missing or corrupt file raises ``ValueError`` naming it."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: corrupt JSON ({exc})") from None


def read_npz(path: str | os.PathLike, error: type[InputError] = InputError, *, what: str = "file",
             missing: str | None = None) -> dict:
    """Every array of an ``.npz`` archive, read with ``allow_pickle=False``.

    A missing file, a directory, a file that is not an ``.npz`` archive (truncated, or another kind), a key
    holding pickled Python objects (refused: unpickling can run code) and any other read failure raise
    ``error`` with one line that names the file; ``what`` names the kind of file in those lines (``"file"``,
    ``"checkpoint"``, ...) and ``missing`` replaces the not-found line's ``"<what> not found"``.
    """
    path = Path(path)
    if not path.exists():
        raise error(f"{path}: {missing or what + ' not found'}")
    if path.is_dir():
        raise error(f"{path}: is a directory, not an .npz {what}")
    if not zipfile.is_zipfile(path):
        raise error(f"{path}: corrupt {what}: not an .npz archive (numpy.savez writes one; truncated, or another "
                    f"kind of file?)")
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {}
            for k in z.files:
                try:
                    out[k] = z[k]
                except ValueError:
                    raise error(f"{path}: key {k!r} holds Python objects (pickled); refused (unpickling can run "
                                f"code): save numeric arrays with numpy.savez") from None
            return out
    except error:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise error(f"{path}: corrupt {what} ({type(exc).__name__}: {exc})".splitlines()[0]) from None
