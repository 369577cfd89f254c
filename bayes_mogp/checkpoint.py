r"""Sampler checkpoints that hold arrays only: no pickle, so loading one cannot run code.

A checkpoint is one ``.npz`` archive (written atomically, :func:`bayes_mogp.io.atomic_save_npz`) with

* ``format`` (``"bayes-mogp-checkpoint"``) and ``format_version`` (:data:`FORMAT_VERSION`);
* ``state_000``, ``state_001``, ...: the leaves of the sampler state (NumPyro's ``HMCState``, or the
  ``HMCGibbsState`` of :class:`numpyro.infer.DiscreteHMCGibbs`: positions, potential energy, gradient,
  step size, mass matrix, PRNG keys, ...) in the order of :func:`jax.tree_util.tree_flatten`, each with a
  leading chain axis when there are several chains;
* ``sample__<site>`` and ``stat__<field>``: the draws and NUTS statistics collected so far,
  ``(chains, draws, ...)``;
* ``settings`` (JSON text: the sampler settings), ``seconds`` (sampling time so far) and ``chunks``
  (``(k, 2)``: draws per chain and seconds of each chunk so far, the first one with the warmup).

The tree structure is *not* stored: :func:`restore_state` rebuilds it from a fresh initial state of the
same kernel on the same model, data and chains (``kernel.init``), then checks that the number, shapes and dtypes
of the stored leaves match it.  A checkpoint of another model, another number of chains or another
precision is therefore refused, as is a truncated or corrupt file, each with one line
(:class:`CheckpointError`, a ``ValueError``).
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np

from .io import atomic_save_npz, read_npz
from .errors import InputError

__all__ = ["FORMAT_VERSION", "CheckpointError", "save_checkpoint", "load_checkpoint", "restore_state"]

FORMAT = "bayes-mogp-checkpoint"
FORMAT_VERSION = 1
_STATE, _SAMPLE, _STAT = "state_", "sample__", "stat__"


class CheckpointError(InputError):
    """A checkpoint that is missing, truncated, corrupt, of another version or of another model."""


def save_checkpoint(path, state, samples: dict, stats: dict, *, seconds: float, settings: dict, chunks=()) -> Path:
    """Write ``state`` (any pytree of arrays), the draws and statistics so far, atomically."""
    leaves = jax.tree_util.tree_leaves(jax.device_get(state))
    arrays = {"format": np.asarray(FORMAT), "format_version": np.asarray(FORMAT_VERSION),
              "settings": np.asarray(json.dumps(settings)), "seconds": np.asarray(float(seconds)),
              "num_state_leaves": np.asarray(len(leaves)),
              "chunks": np.asarray(chunks, dtype=np.float64).reshape(-1, 2)}
    for i, leaf in enumerate(leaves):
        arrays[f"{_STATE}{i:03d}"] = np.asarray(leaf)
    arrays.update({f"{_SAMPLE}{k}": np.asarray(v) for k, v in samples.items()})
    arrays.update({f"{_STAT}{k}": np.asarray(v) for k, v in stats.items()})
    return atomic_save_npz(path, **arrays)


def load_checkpoint(path) -> dict:
    """Read a checkpoint: ``{"leaves", "samples", "stats", "seconds", "settings", "chunks"}``.

    Raises :class:`CheckpointError` (one line naming the file) if it is missing, not an ``.npz``
    archive (e.g. truncated), holds pickled objects, lacks a key, or has another format version.
    """
    path = Path(path)
    data = read_npz(path, CheckpointError, what="checkpoint", missing="checkpoint not found (nothing to resume)")
    for key in ("format", "format_version", "settings", "seconds", "num_state_leaves"):
        if key not in data:
            raise CheckpointError(f"{path}: not a bayes-mogp checkpoint (missing key {key!r})")
    if str(data["format"]) != FORMAT:
        raise CheckpointError(f"{path}: not a bayes-mogp checkpoint (format {str(data['format'])!r})")
    version = int(data["format_version"])
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {version}, this bayes-mogp reads version "
                              f"{FORMAT_VERSION}; start the fit again")
    n = int(data["num_state_leaves"])
    missing = [i for i in range(n) if f"{_STATE}{i:03d}" not in data]
    if missing:
        raise CheckpointError(f"{path}: corrupt checkpoint (state leaf {missing[0]} missing)")
    try:
        settings = json.loads(str(data["settings"]))
    except json.JSONDecodeError:
        raise CheckpointError(f"{path}: corrupt checkpoint (settings are not JSON)") from None
    samples = {k[len(_SAMPLE):]: v for k, v in data.items() if k.startswith(_SAMPLE)}
    if not samples:
        raise CheckpointError(f"{path}: corrupt checkpoint (no draws)")
    return {"leaves": [data[f"{_STATE}{i:03d}"] for i in range(n)], "samples": samples,
            "stats": {k[len(_STAT):]: v for k, v in data.items() if k.startswith(_STAT)},
            "seconds": float(data["seconds"]), "settings": settings, "path": str(path),
            "chunks": [tuple(r) for r in data.get("chunks", np.zeros((0, 2))).tolist()]}


def restore_state(checkpoint: dict, template):
    """The sampler state of ``checkpoint`` with the tree structure of ``template``.

    ``template``: a fresh initial state (or its ``jax.ShapeDtypeStruct`` leaves) of the same kernel,
    model, data and number of chains (leading chain axis included).  Raises :class:`CheckpointError` when the number, shapes or dtypes of the
    stored leaves do not match it (another model, data size, number of chains or precision).
    """
    leaves, treedef = jax.tree_util.tree_flatten(template)
    stored = checkpoint["leaves"]
    where = checkpoint.get("path", "checkpoint")
    if len(stored) != len(leaves):
        raise CheckpointError(f"{where}: the checkpoint's sampler state has {len(stored)} arrays, this model's has "
                              f"{len(leaves)}; it was written for another model or sampler")
    out = []
    for i, (a, t) in enumerate(zip(stored, leaves)):
        want = tuple(t.shape)
        if tuple(a.shape) != want or np.dtype(a.dtype) != np.dtype(t.dtype):
            raise CheckpointError(f"{where}: sampler state array {i} has shape {tuple(a.shape)} {a.dtype}, this "
                                  f"model needs {want} {np.dtype(t.dtype)}; it was written for another model, data "
                                  f"size, number of chains or precision")
        out.append(jax.numpy.asarray(a))
    return jax.tree_util.tree_unflatten(treedef, out)
