r"""Fit a BNN to a data set: :func:`fit` (NUTS or SVI, optionally into a run folder) and :func:`resume`.

The three lines::

    post = bayes_mogp.bnn.fit(jax.random.PRNGKey(0), "bnn_regression_horseshoe", x, y)   # or a Dataset
    pred = post.predict(x_new)        # bayes_mogp.prediction.Prediction, user units
    post.score(x_test, y_test)        # {"n", "rmse", "nll", "coverage_90"} or accuracy / NLL / ECE

What :func:`fit` does, in order:

1. the data: a :class:`~bayes_mogp.data.Dataset`, or arrays ``x`` ``(n, d)`` and ``y`` (integer
   ``(n,)``: class labels; real ``(n,)`` or ``(n, k)``: regression targets), or, when neither is
   given, the built-in data set the spec's ``[data]`` table names;
2. the model inputs: the data set's input transform (standardisation, or per-image for MNIST), then a
   whitened PCA only if the spec or ``pca=`` asks for it and it reduces the dimension
   (:class:`~bayes_mogp.bnn.inputs.InputMap`); regression targets are standardised
   (:meth:`Dataset.targets`) and every prediction is mapped back;
3. the model: the spec's ``[model]`` table (:mod:`.spec`), or a :class:`BNNConfig` used as a template
   (its ``d_in``/``d_out`` are taken from the data); the likelihood is the spec's or the data's
   (labels: categorical; real targets: Gaussian);
4. inference in the spec's precision (float32 by default): NUTS (:func:`.inference.run_nuts`, chains
   vectorised or across devices), SVI (:func:`.inference.run_svi`), a minibatch method
   (:func:`.sgmcmc.run_minibatch`) or MILE (:func:`.mile.run_mile`: a deep ensemble, then MCLMC per member);
5. with ``out=RUN``: ``RUN/fit_config.json`` and ``RUN/fit_data.npz`` first (what :func:`resume`
   needs), ``RUN/checkpoint.npz`` after warmup and every ``checkpoint_every`` draws (NUTS), then the
   run folder of :meth:`BNNPosterior.save` (``arrays.npz``, ``posterior.nc``, ``manifest.json``).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..data import Dataset, TargetTransform, as_dataset
from ..io import atomic_save_npz, atomic_write_json, read_json
from ..nuts import raw_key
from ..runs import compact_arrays
from .inference import NutsSettings, resume_nuts, run_nuts, run_svi
from .mile import MileSettings, resume_mile, run_mile
from .mile import check_size as check_mile_size
from .sgmcmc import MINIBATCH_METHODS, MinibatchSettings, check_size, resume_minibatch, run_minibatch
from .inputs import InputMap
from .models import BNNConfig
from .posterior import BNNPosterior
from .spec import DATA_KEYS, MODEL_KEYS, QUICK, config_to_model_table, dataset_from_spec, inference_settings, read_spec, resolve_config
from ..errors import InputError

__all__ = ["fit", "fit_or_resume", "resume", "as_dataset", "CHECKPOINT", "FIT_CONFIG", "FIT_DATA"]

CHECKPOINT, FIT_CONFIG, FIT_DATA = "checkpoint.npz", "fit_config.json", "fit_data.npz"


def _task_hint(spec_or_config) -> str | None:
    lik = spec_or_config.likelihood if isinstance(spec_or_config, BNNConfig) \
        else spec_or_config.get("model", {}).get("likelihood")
    if lik is None:
        return None
    return "classification" if lik == "categorical" else "regression"


def fit(key, spec_or_config, data=None, y=None, *, out=None, log=None, quick: bool = False, progress: bool = False,
        max_minutes: float | None = None, data_seed: int = 0, **overrides) -> BNNPosterior:
    """Fit a BNN posterior (module docstring); same ``key``, same posterior.

    Parameters
    ----------
    key : JAX PRNG key
    spec_or_config : dict, spec name / path (``models/bnn_*.toml``) or :class:`BNNConfig`
    data, y : a :class:`Dataset`; or arrays ``x`` ``(n, d)`` and ``y``; or None (the spec's data set)
    out : run folder to checkpoint into and save to (None: nothing written)
    log : callable receiving progress lines (one per checkpoint chunk)
    quick : a tiny run (:data:`.spec.QUICK`: few draws, steps or epochs, 100 training images) for smoke
        tests; settings given explicitly win
    progress : a progress bar per epoch on stderr (minibatch methods; it replaces ``log``'s lines per epoch)
    max_minutes : refuse a minibatch run whose estimated time (:func:`.sgmcmc.estimate_seconds`) is longer,
        or whose draws would not fit in memory, before anything is written (None: no time limit)
    data_seed : the seed of the stratified choice of the spec's built-in training images
    **overrides : any key of the spec's tables, by name (None values are ignored): ``[model]`` ``widths``
        (e.g. ``(1000, 1000)``; the only one a :class:`BNNConfig` takes), ``[data]`` ``n_train``, ``n_test``
        (built-in data) and ``pca`` (components; applies to any data), and ``[inference]`` settings
        (:mod:`.spec`), e.g. ``method="svi"``, ``num_samples=200``, ``dtype="float64"``
    """
    key = raw_key(key)
    is_config = isinstance(spec_or_config, BNNConfig)
    spec = {"model": {}, "data": {}, "inference": {}} if is_config else read_spec(spec_or_config)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    model_over = {k: overrides.pop(k) for k in list(overrides) if k in MODEL_KEYS}
    data_over = {k: overrides.pop(k) for k in list(overrides) if k in DATA_KEYS}
    settings = overrides  # what is left: the [inference] table's (checked by inference_settings)
    if is_config and set(model_over) - {"widths"}:
        raise InputError(f"a BNNConfig takes no model override but widths; got {sorted(model_over)} (give a spec, "
                         f"or build the BNNConfig with them)")
    if "widths" in model_over:
        model_over["widths"] = [int(w) for w in model_over["widths"]]
    if quick:
        method = settings.get("method", spec["inference"].get("method", "nuts"))
        settings = {**QUICK.get(method, {}), **settings}
        data_over.setdefault("n_train", QUICK["n_train"])
    spec = {**spec, "model": {**spec["model"], **model_over}, "data": {**spec["data"], **data_over}}
    if data is None:
        if y is not None:
            raise InputError("y given without x")
        data = dataset_from_spec(spec, seed=data_seed)
    elif "input_transform" in data_over:
        raise InputError("input_transform applies to the built-in images a spec names; own data are standardised")
    ds = as_dataset(data, y, task=_task_hint(spec_or_config if is_config else spec))
    if is_config and "widths" in model_over:
        spec_or_config = dataclasses.replace(spec_or_config, widths=tuple(model_over["widths"]))
    inf = inference_settings(spec, settings)
    pca = spec["data"].get("pca")
    input_map = InputMap.fit(ds, pca)
    X = input_map(ds.x_train)
    Y = ds.y_train if ds.task == "classification" else ds.targets()
    config = resolve_config(spec_or_config if is_config else spec, task=ds.task, d_in=X.shape[1],
                            d_out=ds.num_outputs)
    data_table = {k: v for k, v in spec["data"].items() if k != "pca"}
    data_table["pca"] = int(input_map.components.shape[1]) if input_map.uses_pca else None
    resolved = {"model": config_to_model_table(config) if isinstance(config.prior, str) else {},
                "data": data_table, "inference": inf, "key": [int(k) for k in np.asarray(key)]}
    if "name" in spec:
        resolved["name"] = spec["name"]
    if inf["method"] in MINIBATCH_METHODS:
        check_size(config, X.shape[0], MinibatchSettings.from_dict(inf), max_minutes=max_minutes)
    elif inf["method"] == "mile":
        check_mile_size(config, X.shape[0], MileSettings.from_dict(inf), max_minutes=max_minutes)
    if out is not None:
        _start_run(Path(out), resolved, ds, input_map)
    prep = _Prepared(config, X, Y, ds.task, ds.num_classes, input_map, ds.target_transform, ds.x_train, ds.y_train,
                     ds.x_test, ds.y_test, ds.describe())
    return _run(key, prep, resolved, out=out, log=log, progress=progress)


class _Prepared(NamedTuple):
    """What a fit needs besides the key and the settings: the model, its inputs and targets, the data."""

    config: BNNConfig
    X: np.ndarray  # model inputs (n, d_in)
    Y: np.ndarray  # labels (n,) or standardised targets (n, k)
    task: str
    num_classes: int | None
    input_map: InputMap
    target_transform: TargetTransform | None
    x_train: np.ndarray  # user units
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    data_info: dict


def _run(key, prep: _Prepared, spec: dict, *, out=None, log=None, resuming: bool = False,
         num_samples: int | None = None, progress: bool = False) -> BNNPosterior:
    """Sample (NUTS or a minibatch method, fresh or resumed) or fit SVI, build the posterior, save it into
    ``out``."""
    config, X, Y = prep.config, prep.X, prep.Y
    inf = spec["inference"]
    t0 = time.perf_counter()
    ck = None if out is None else Path(out) / CHECKPOINT
    if inf["method"] in MINIBATCH_METHODS:
        if resuming:
            res = resume_minibatch(ck, config, X, Y, log=None if progress else log, progress=progress)
        else:
            res = run_minibatch(key, config, X, Y, MinibatchSettings.from_dict(inf), dtype=inf["dtype"],
                                checkpoint=ck, log=None if progress else log, progress=progress)
        losses = res.trace
        extra = {"resumed": True} if resuming else {}
        extra.update(epochs=int(inf["num_epochs"]), seconds_per_epoch=res.seconds_per_epoch,
                     epoch_seconds=[round(t, 4) for t in res.epoch_seconds])
    elif inf["method"] == "mile":
        if resuming:
            res = resume_mile(ck, config, X, Y, log=log)
        else:
            res = run_mile(key, config, X, Y, MileSettings.from_dict(inf), dtype=inf["dtype"], checkpoint=ck, log=log)
        losses = res.map_losses
        extra = {"resumed": True} if resuming else {}
        extra.update(member_seconds=[[round(t, 3) for t in m] for m in res.member_seconds],
                     gradient_evaluations=res.gradient_evaluations, unit_metric_members=res.settings["unit_metric_members"])
    elif inf["method"] == "svi":
        res = run_svi(key, config, X, Y, guide=inf["guide"], rank=inf["rank"], num_steps=inf["num_steps"],
                      learning_rate=inf["learning_rate"], num_samples=inf["num_samples"], dtype=inf["dtype"],
                      log=log)
        losses = res.losses
        extra = {}
    elif resuming:
        res = resume_nuts(ck, config, X, Y, num_samples=num_samples, checkpoint_every=inf["checkpoint_every"],
                          log=log)
        losses, extra = None, {"resumed": True}
        spec["inference"] = {**inf, "num_samples": res.settings["num_samples"]}
    else:
        res = run_nuts(key, config, X, Y, NutsSettings.from_dict(inf), dtype=inf["dtype"], checkpoint=ck, log=log)
        losses, extra = None, {}
    spec["inference"] = {**spec["inference"], **{k: res.settings[k] for k in ("chain_method", "backend", "devices")
                                                if k in res.settings}}
    timings = {"seconds": res.seconds, **extra}
    if getattr(res, "chunks", None):
        timings["chunks"] = [[int(d), float(t)] for d, t in res.chunks]
    post = BNNPosterior(config, res.samples, res.stats, prep.input_map, prep.target_transform, prep.task,
                        prep.num_classes, prep.x_train, prep.y_train, prep.x_test, prep.y_test, prep.data_info, spec,
                        timings, losses)
    t1 = time.perf_counter()
    idata = post.to_inference_data()  # log-likelihood, replicates, test predictions: computed once, saved
    t2 = time.perf_counter()
    post = dataclasses.replace(post, timings={**timings, "postprocess_seconds": t2 - t1, "wall_seconds": t2 - t0})
    post.__dict__["_inference_data"] = idata  # the cached_property's value, computed above
    if out is not None:
        post.save(out, overwrite=True)  # this run's own folder (_start_run refused an existing run)
        if log is not None:
            log(f"saved {out} (posterior.nc, arrays.npz, manifest.json)")
    return post


def _start_run(out: Path, spec: dict, ds: Dataset, input_map: InputMap) -> None:
    """Refuse a folder that already holds a run; write what :func:`resume` needs."""
    for name in ("manifest.json", CHECKPOINT, FIT_CONFIG):
        if (out / name).exists():
            raise InputError(f"{out} already holds a run ({name}); continue it with resume (fit --resume --out "
                             f"{out}) or choose another output folder")
    arrays = {"x_train": ds.x_train, "y_train": ds.y_train, **input_map.to_arrays(), "task": np.asarray(ds.task),
              "num_classes": np.asarray(-1 if ds.num_classes is None else ds.num_classes)}
    if ds.x_test is not None and ds.y_test is not None:
        arrays.update(x_test=ds.x_test, y_test=ds.y_test)
    if ds.target_transform is not None:
        arrays.update(ds.target_transform.to_arrays())
    atomic_save_npz(out / FIT_DATA, **compact_arrays(arrays))  # raw pixels as bytes: 47 MB, not 376, for 60,000 images
    atomic_write_json(out / FIT_CONFIG, {"spec": spec, "data": ds.describe()})


def resume(out, *, num_samples: int | None = None, log=None, progress: bool = False) -> BNNPosterior:
    """Continue the NUTS or minibatch run checkpointed in ``out`` (interrupted; a finished NUTS run can be
    extended to ``num_samples`` draws per chain in total); the draws equal those of an uninterrupted run."""
    from ..runs import read_manifest

    out = Path(out)
    if not out.is_dir():
        raise InputError(f"{out}: run folder not found")
    if (out / "manifest.json").exists():
        read_manifest(out, kind="bnn")  # refuses a run of another kind in one line
    if not (out / FIT_CONFIG).exists():
        raise InputError(f"{out}: not a BNN fit folder (no {FIT_CONFIG}); start it with fit SPEC --out {out}")
    saved = read_json(out / FIT_CONFIG)
    spec = saved["spec"]
    if spec["inference"]["method"] == "svi":
        raise InputError(f"{out}: an SVI fit has no sampler state to resume; fit it again")
    from ..runs import read_arrays

    a = read_arrays(out, FIT_DATA)
    input_map = InputMap.from_arrays(a)
    task = str(a["task"])
    nc = int(a["num_classes"])
    target = TargetTransform.from_arrays(a) if "target_shift" in a else None
    X = input_map(a["x_train"])
    Y = a["y_train"] if task == "classification" else target(a["y_train"])
    d_out = nc if task == "classification" else a["y_train"].shape[1]
    config = resolve_config(spec, task=task, d_in=X.shape[1], d_out=d_out)
    key = np.asarray(spec["key"], dtype=np.uint32)
    prep = _Prepared(config, X, Y, task, None if nc < 0 else nc, input_map, target, a["x_train"], a["y_train"],
                     a.get("x_test"), a.get("y_test"), saved["data"])
    if num_samples is not None and spec["inference"]["method"] in MINIBATCH_METHODS + ("mile",):
        raise InputError("num_samples applies to NUTS runs; a minibatch or MILE run's draws are set by its schedule "
                         "and thin")
    return _run(key, prep, spec, out=out, log=log, resuming=True, num_samples=num_samples, progress=progress)


def fit_or_resume(key, spec_or_config, out, *, log=None, progress: bool = False, **fit_kwargs) -> BNNPosterior:
    """The posterior in the run folder ``out``, computing only what is missing: the finished run when ``out``
    holds one (:func:`bayes_mogp.load`), the interrupted run continued when it holds a checkpoint
    (:func:`resume`), else a new :func:`fit` into ``out`` (``fit_kwargs`` as :func:`fit`'s).

    A finished or interrupted run is reused only if it was fitted with the same spec and hidden widths as this
    call asks for; otherwise :class:`~bayes_mogp.errors.InputError` says what differs (choose another folder)."""
    from ..runs import load

    out = Path(out)
    started = (out / FIT_CONFIG).exists()
    if started:
        saved = read_json(out / FIT_CONFIG)["spec"]
        want = read_spec(spec_or_config) if not isinstance(spec_or_config, BNNConfig) else {}
        name = want.get("name")
        widths = fit_kwargs.get("widths")
        if name is not None and saved.get("name") not in (None, name):
            raise InputError(f"{out} holds a run of spec {saved.get('name')!r}, not {name!r}; choose another folder")
        if widths is not None and list(saved["model"].get("widths", [])) != [int(w) for w in widths]:
            raise InputError(f"{out} holds a run with widths {saved['model'].get('widths')}, not "
                             f"{[int(w) for w in widths]}; choose another folder")
    if (out / "manifest.json").exists():
        return load(out)
    if started and (out / CHECKPOINT).exists():
        if log is not None:
            log(f"resuming {out}")
        return resume(out, log=log, progress=progress)
    return fit(key, spec_or_config, out=out, log=log, progress=progress, **fit_kwargs)
