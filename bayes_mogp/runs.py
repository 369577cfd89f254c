"""Run folders: one format for every model, so that any run can be predicted from, reported on and reloaded.

A run folder holds

* ``manifest.json``: ``{"format": "bayes-mogp-run", "format_version", "kind", "package_version",
  "created", "spec", "data"}``; ``kind`` is the model (``"nngp"``, ``"mogp"``, ``"bnn"``), ``spec`` the
  settings the model was fitted with, ``data`` what :meth:`bayes_mogp.data.Dataset.describe` says
  (name, task, sizes, SHA-256 fingerprint of the training arrays);
* ``arrays.npz``: the model's arrays (training inputs, fitted transforms, ...), never pickles;
* ``posterior.nc``: ArviZ InferenceData (netCDF, h5netcdf engine) where the model has posterior draws;
* whatever the command adds (``results.json``, ``predictions_<name>.npz``, ``report.html``, ...).

Every file is written atomically (:mod:`bayes_mogp.io`), the manifest last, so a folder with a manifest
is complete.  :func:`load` reads any run and returns the posterior object of its kind; a folder without
a manifest, of another kind than expected, or of another format version is refused with one line
(:class:`RunFolderError`, a ``ValueError``).
"""

from __future__ import annotations

import datetime
import importlib
import json
from pathlib import Path

import numpy as np

from .io import atomic_save_npz, atomic_write_json, read_npz
from .errors import InputError

__all__ = ["FORMAT_VERSION", "KINDS", "RunFolderError", "write_run", "read_manifest", "read_arrays",
           "load", "save_inference_data", "load_inference_data", "task_arrays", "task_from_arrays"]

FORMAT = "bayes-mogp-run"
FORMAT_VERSION = 1
#: kind -> "module:Class" of its posterior (imported on demand, so loading one kind never imports the others)
KINDS = {"nngp": "bayes_mogp.nngp:NNGPPosterior", "mogp": "bayes_mogp.mogp.posterior:MoGPPosterior",
         "bnn": "bayes_mogp.bnn.posterior:BNNPosterior"}


#: what a fit in progress has written before the manifest (bayes_mogp.bnn.pipeline, write_run)
_UNFINISHED_RUN_FILES = frozenset({"fit_config.json", "fit_data.npz", "checkpoint.npz", "arrays.npz"})


def _looks_like_old_run(names: set) -> bool:
    """Whether a folder without a manifest holds a run of the layout before the manifest format: BNN
    ``config.json`` + ``data.npz``, ``checkpoint.pkl``, ``fit.json``; MoGP ``<name>.nc`` (no ``arrays.npz``)."""
    return ({"config.json", "data.npz"} <= names or bool(names & {"checkpoint.pkl", "fit.json"})
            or (any(n.endswith(".nc") for n in names) and "arrays.npz" not in names))


class RunFolderError(InputError):
    """A run folder that is missing, incomplete, of another kind or of another format version."""


def write_run(out_dir, *, kind: str, spec: dict, data: dict, arrays: dict, inference_data=None) -> Path:
    """Write a run folder (arrays, then the netCDF, then the manifest); returns its path."""
    from . import __version__

    if kind not in KINDS:
        raise InputError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_save_npz(out / "arrays.npz", **compact_arrays(arrays))
    if inference_data is not None:
        save_inference_data(inference_data, out / "posterior.nc")
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind, "package_version": __version__,
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "spec": spec, "data": data}
    atomic_write_json(out / "manifest.json", manifest)
    return out


def read_manifest(run_dir, *, kind: str | None = None) -> dict:
    """The manifest of ``run_dir``; one-line :class:`RunFolderError` if it is not a run of ``kind``."""
    run = Path(run_dir)
    if not run.exists():
        raise RunFolderError(f"{run}: run folder not found")
    if not run.is_dir():
        raise RunFolderError(f"{run}: not a folder (a run folder holds manifest.json, arrays.npz, ...)")
    path = run / "manifest.json"
    if not path.exists():
        msg = f"{run}: not a bayes-mogp run folder (no manifest.json)"
        names = {p.name for p in run.iterdir()}
        if _looks_like_old_run(names):
            msg += "; it looks like a run of an older bayes-mogp version: fit it again with this version"
        elif names & _UNFINISHED_RUN_FILES:
            msg += "; it holds an unfinished fit (the manifest is written last): `bayes-mogp fit --resume --out " \
                   f"{run}` continues a checkpointed BNN fit, other models: fit again"
        raise RunFolderError(msg)
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunFolderError(f"{path}: corrupt manifest ({type(exc).__name__})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise RunFolderError(f"{path}: not a bayes-mogp run manifest")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise RunFolderError(f"{path}: run format version {version}, this bayes-mogp reads version "
                             f"{FORMAT_VERSION}; fit the model again with this version")
    if manifest.get("kind") not in KINDS:
        raise RunFolderError(f"{path}: unknown run kind {manifest.get('kind')!r}")
    if kind is not None and manifest["kind"] != kind:
        raise RunFolderError(f"{run}: a {manifest['kind']} run, not a {kind} run")
    return manifest


def read_arrays(run_dir, name: str = "arrays.npz") -> dict:
    """The arrays of a run folder (no pickles); one-line error naming the file if missing or corrupt.
    Arrays stored as bytes by :func:`compact_arrays` come back as float64."""
    a = read_npz(Path(run_dir) / name, RunFolderError, what="run file", missing="missing from the run folder")
    names = [str(n) for n in np.atleast_1d(a.pop(_COMPACTED, np.zeros(0, dtype=str)))]
    return {k: (np.asarray(v, dtype=np.float64) if k in names else v) for k, v in a.items()}


_COMPACTED = "_stored_as_uint8"


def compact_arrays(arrays: dict) -> dict:
    """Float arrays whose values are all integers in [0, 255] (raw image pixels) stored as uint8, losslessly
    (60,000 images: 47 MB instead of 376 MB); their names are recorded so that :func:`read_arrays` restores
    float64."""
    out, names = {}, []
    for k, v in arrays.items():
        a = np.asarray(v)
        if a.dtype.kind == "f" and a.size > 1024 and np.all(np.isfinite(a)) and a.min() >= 0 and a.max() <= 255 \
                and np.array_equal(a, np.round(a)):
            out[k] = a.astype(np.uint8)
            names.append(k)
        else:
            out[k] = a
    if names:
        out[_COMPACTED] = np.asarray(names)
    return out


def task_arrays(task: str, num_classes: int | None, target_transform) -> dict:
    """The arrays that record a posterior's task: ``task``, ``num_classes`` (-1 for regression) and, for
    regression, the target transform's shift and scale (:meth:`TargetTransform.to_arrays`)."""
    arrays = {"task": np.asarray(task), "num_classes": np.asarray(-1 if num_classes is None else num_classes)}
    if target_transform is not None:
        arrays.update(target_transform.to_arrays())
    return arrays


def task_from_arrays(arrays: dict):
    """``(task, num_classes, target_transform)`` back from :func:`task_arrays`'s arrays."""
    from .data import TargetTransform

    nc = int(arrays["num_classes"])
    target = TargetTransform.from_arrays(arrays) if "target_shift" in arrays else None
    return str(arrays["task"]), (None if nc < 0 else nc), target


def save_inference_data(idata, path) -> Path:
    """InferenceData as netCDF (h5netcdf engine), written atomically."""
    from .io import atomic_path

    with atomic_path(path, suffix=".nc") as tmp:
        idata.to_netcdf(str(tmp), engine="h5netcdf")
    return Path(path)


def load_inference_data(run_dir, name: str = "posterior.nc"):
    """The run's InferenceData; one-line error naming the file if missing or unreadable."""
    import arviz as az

    path = Path(run_dir) / name
    if not path.exists():
        raise RunFolderError(f"{path}: missing from the run folder")
    try:
        return az.from_netcdf(str(path), engine="h5netcdf")
    except Exception as exc:  # noqa: BLE001 - h5py/xarray raise many types for a damaged file
        raise RunFolderError(f"{path}: corrupt netCDF ({type(exc).__name__})") from None


def load(run_dir):
    """The posterior saved in any run folder (``NNGPPosterior``, ``MoGPPosterior``, ``BNNPosterior``)."""
    manifest = read_manifest(run_dir)
    module, cls = KINDS[manifest["kind"]].split(":")
    return getattr(importlib.import_module(module), cls).load(run_dir)
