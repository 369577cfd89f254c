r"""Choose the MoGP's depth, feature rank and number of jumps on the training data only.

>>> from bayes_mogp import mogp
>>> sel = mogp.select_settings(jax.random.key(0), data, depths=(1, 3), ranks=(8, 16, 32))
>>> sel.settings.depth, sel.settings.rank          # the candidate with the best held-out score
>>> post = mogp.fit(jax.random.key(1), data, settings=sel.settings)

Every candidate (depth, rank, J) on the grid is scored on the training data; the test data are never seen.
Two criteria:

* ``"cv"`` (the default): K-fold cross-validation of the fit's MAP start.  On each fold the feature map and
  the MAP point (:func:`.model.fit_map`, the fit's number of Adam steps) come from the other folds only, and
  the held-out points are predicted exactly given that kernel (:func:`bayes_mogp.mogp.likelihood.predict`).
  The score is the held-out log predictive density of what the user is scored on: the categorical log
  probability of the labels (classification, class probabilities as the posterior's) or the Gaussian log
  density of the targets (regression, model units), averaged over the n points.  Candidates within one paired
  standard error of the best score are tied (the one-standard-error rule of Hastie, Tibshirani and Friedman
  2009, section 7.10, with the standard error of the pointwise differences); for classification the tie is
  broken by the held-out accuracy, for regression the best score stands.  The tie-break matters where two
  candidates have the same log score within noise: on Fashion-MNIST (n = 1000, seed 0) depth 1 and depth 3 at
  rank 8 scored -0.6436 and -0.6454 per point (paired standard error larger than the gap) with held-out
  accuracies 0.808 and 0.828.
* ``"loo"``: the exact leave-one-out log density of the training targets at the MAP point of all n points,
  :math:`\sum_i \log p(y_i \mid y_{-i}, \hat\theta)`, closed-form for a GP with its function values
  integrated out (Rasmussen and Williams 2006, eq. 5.10-5.12; :func:`bayes_mogp.mogp.likelihood.loo_log_density`).
  Cheap (one MAP per candidate), but the features in :math:`\hat\theta` were fitted to every :math:`y_i`:
  each extra feature dimension the MAP can fit raises it.  On MNIST (n = 1000, seed 0) it rises
  monotonically with the rank at both depths (per point 6.09, 6.38, 6.75 at depth 1 and 6.66, 7.10, 7.78 at
  depth 3 for ranks 8, 16, 32), so it always picks the largest rank offered, which is why it is not the
  default.

The training log marginal likelihood at the MAP point is reported with ``"loo"`` but never used (it rises
with the rank for the same reason).
"""

from __future__ import annotations

import time
from typing import NamedTuple

import jax
import numpy as np

from ..data import as_dataset
from ..errors import InputError, InputTypeError
from ..numerics import float64
from ..validation import check_choice, check_int
from .features import build_feature_map
from .model import build_problem, fit_map, mogp_model, model_kwargs
from .predictive import loo_draws
from .settings import MoGPSettings

__all__ = ["Selection", "select_settings", "selection_cost", "candidate_grid", "CRITERIA", "DEFAULT_DEPTHS",
           "DEFAULT_RANKS", "SELECTION_FIT_SECONDS"]

#: the grid of :func:`select_settings` when none is given (J: the settings' ``num_jumps``)
DEFAULT_DEPTHS = (1, 3)
DEFAULT_RANKS = (8, 16, 32)


class Selection(NamedTuple):
    """What :func:`select_settings` chose and why."""

    settings: MoGPSettings  # the input settings with the chosen depth, rank and num_jumps
    table: tuple  # one dict per candidate: depth, rank, num_jumps, score, seconds and the criterion's details
    criterion: str  # "cv" or "loo"

    def to_dict(self) -> dict:
        best = self.settings
        return {"criterion": self.criterion, "chosen": {"depth": best.depth, "rank": best.rank,
                                                        "num_jumps": best.num_jumps},
                "candidates": [dict(row) for row in self.table]}


CRITERIA = ("cv", "loo")
#: seconds per MAP fit of the selection besides its Adam steps: the compilation of its program (each candidate's
#: shapes are new) and NumPyro's eager initialisation (measured on 2 CPU cores: MNIST, n = 1000, 3 folds, the 6
#: candidates of the default grid, 81-102 s for the 18 MAP fits of 1500 steps, 5-33 s per candidate)
SELECTION_FIT_SECONDS = 6.0


def _tuple_of_ints(name, values) -> tuple:
    if isinstance(values, (int, np.integer)):
        values = (values,)
    try:
        values = tuple(values)
    except TypeError:
        raise InputTypeError(f"{name} must be a sequence of integers, got {type(values).__name__}") from None
    if not values:
        raise InputError(f"{name} must name at least one value")
    return tuple(check_int(name, v, minimum=1) for v in values)


def candidate_grid(n: int, d: int, *, depths=DEFAULT_DEPTHS, ranks=DEFAULT_RANKS, num_jumps=(8,)) -> list:
    """The (depth, rank, J) candidates for n training inputs of dimension d: ranks above what the feature basis
    allows (d at depth 1, n deeper) are clipped to it, duplicates dropped, order kept."""
    depths = _tuple_of_ints("depths", depths)
    ranks = _tuple_of_ints("ranks", ranks)
    num_jumps = _tuple_of_ints("num_jumps", num_jumps)
    out = []
    for depth in depths:
        for rank in ranks:
            for j in num_jumps:
                cand = (depth, min(rank, d if depth == 1 else n), j)
                if cand not in out:
                    out.append(cand)
    return out


def _map_sites(key, kw: dict, steps: int) -> dict:
    """Every site of the model (latent and deterministic) at the MAP point, each with a leading draw axis of 1."""
    import numpyro.handlers as h

    params, _ = fit_map(key, kw, steps=steps)
    tr = h.trace(h.substitute(h.seed(mogp_model, jax.random.key(0)), data=params)).get_trace(**kw)
    return {name: np.asarray(site["value"])[None] for name, site in tr.items()
            if site["type"] in ("sample", "deterministic")}


def _folds(key, n: int, k: int) -> list:
    order = np.asarray(jax.random.permutation(key, n))
    return [np.sort(part) for part in np.array_split(order, k)]


def _held_out_score(s, limit, cand, x, yt, labels, fold, key, bases=None) -> tuple:
    """Held-out log predictive density of each point of one fold (module docstring, criterion "cv") and, for
    classification, whether each held-out label is predicted right (None for regression).  ``bases``: a dict
    keeping the eigendecomposition of the fold's training base kernel by depth (it does not depend on the rank),
    filled on first use."""
    from ..prediction import gaussian_class_probabilities
    from .predictive import predict_draws, test_inputs

    depth, rank, j = cand
    train = np.setdiff1d(np.arange(x.shape[0]), fold)
    xt, yt_t = x[train], yt[train]
    fmap = build_feature_map(xt, depth=depth, rank=rank, activation=s.activation, w_var=s.w_var, b_var=s.b_var)
    bases = {} if bases is None else bases
    problem = build_problem(fmap, xt, yt_t, base=bases.get(depth), rotation_dtype=s.rotation_dtype)
    bases[depth] = problem.base
    sites = _map_sites(key, model_kwargs(problem, limit, j, drift=s.drift, noise_floor=s.noise_floor), s.map_steps)
    tests = test_inputs(problem, fmap, xt, x[fold])
    mean, var, noise = predict_draws(problem, tests, limit, sites, drift=s.drift)
    total = var[0] + noise[0]  # (m,): predictive variance of a new observation
    if labels is None:
        resid = yt[fold] - mean[0]
        return np.sum(-0.5 * (resid**2 / total[:, None] + np.log(2 * np.pi * total)[:, None]), axis=1), None
    probs = np.asarray(gaussian_class_probabilities(mean[0], total))
    return (np.log(np.clip(probs[np.arange(len(fold)), labels[fold]], 1e-300, None)),
            np.argmax(probs, axis=1) == labels[fold])


@float64
def select_settings(key, data, y=None, *, settings: MoGPSettings | None = None, depths=DEFAULT_DEPTHS,
                    ranks=DEFAULT_RANKS, num_jumps=None, criterion: str = "cv", folds: int = 3,
                    log=None) -> Selection:
    """Score every (depth, rank, J) candidate on the training data and return the best (module docstring).

    ``data``: a :class:`bayes_mogp.data.Dataset` or arrays ``x``, ``y`` (only the training part is used).
    ``settings``: everything else of the fit (prior, activation, ``map_steps``, ...; default
    :class:`MoGPSettings`'s).  ``num_jumps``: the J values to try (default: the settings' ``num_jumps``).
    ``criterion``: ``"cv"`` (``folds``-fold cross-validation of the MAP start, at least 2 folds) or ``"loo"``.
    ``key``: a JAX PRNG key (the folds and every MAP start; same key, same choice).
    """
    from .posterior import _limit

    if settings is not None and not isinstance(settings, MoGPSettings):
        raise InputTypeError(f"settings must be a MoGPSettings (or None), got {type(settings).__name__}")
    check_choice("criterion", criterion, CRITERIA)
    s = settings or MoGPSettings()
    data = as_dataset(data, y)
    if s.b_var is None:
        s = s.replace(b_var=1.0 if data.input_transform.kind == "standardize" else 0.0)
    x, yt = np.asarray(data.inputs()), np.asarray(data.targets())
    n = x.shape[0]
    folds = check_int("folds", folds, minimum=2, maximum=max(2, n // 2))
    grid = candidate_grid(n, x.shape[1], depths=depths, ranks=ranks,
                          num_jumps=(s.num_jumps,) if num_jumps is None else num_jumps)
    limit = _limit(s.prior, s.prior_hyper)
    labels = None if data.task == "regression" else np.asarray(data.labels_train)
    k_folds, k_fits = jax.random.split(key)
    parts = _folds(k_folds, n, folds)
    # the eigendecomposition of a training set's base kernel depends on the depth, not on the rank: kept by
    # training set (each fold, or "all" the points) and depth
    rows, base_cache, pointwise = [], {}, []
    for (depth, rank, j), k in zip(grid, jax.random.split(k_fits, len(grid))):
        t0 = time.perf_counter()
        row = {"depth": depth, "rank": rank, "num_jumps": j}
        if criterion == "cv":
            out = [_held_out_score(s, limit, (depth, rank, j), x, yt, labels, part, kk,
                                   bases=base_cache.setdefault(f, {}))
                   for f, (part, kk) in enumerate(zip(parts, jax.random.split(k, folds)))]
            points = np.concatenate([o[0] for o in out])  # in the order of the folds
            pointwise.append(points)
            row.update(score=float(np.mean(points)), fold_scores=[float(np.mean(o[0])) for o in out])
            if labels is not None:
                row["accuracy"] = float(np.mean(np.concatenate([o[1] for o in out])))
        else:
            fmap = build_feature_map(x, depth=depth, rank=rank, activation=s.activation, w_var=s.w_var,
                                     b_var=s.b_var)
            bases = base_cache.setdefault("all", {})
            problem = build_problem(fmap, x, yt, base=bases.get(depth), rotation_dtype=s.rotation_dtype)
            bases[depth] = problem.base
            sites = _map_sites(k, model_kwargs(problem, limit, j, drift=s.drift, noise_floor=s.noise_floor),
                               s.map_steps)
            loo = loo_draws(problem, limit, sites, drift=s.drift)[0]
            row.update(score=float(np.mean(loo)), log_likelihood=float(sites["log_marginal_likelihood"][0]))
        if not np.isfinite(row["score"]):
            row["score"] = float("-inf")
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
        if log:
            log(f"mogp select ({criterion}): depth {depth}, rank {rank}, J {j}: {row['score']:.4f} per point "
                f"({row['seconds']:.1f} s)")
    best = max(rows, key=lambda r: r["score"])
    if not np.isfinite(best["score"]):
        raise InputError("settings selection: no candidate has a finite score (check the data)")
    if criterion == "cv":
        best = _one_se_rule(rows, pointwise, classification=labels is not None)
    chosen = s.replace(depth=best["depth"], rank=best["rank"], num_jumps=best["num_jumps"])
    return Selection(chosen, tuple(rows), criterion)


def _one_se_rule(rows: list, pointwise: list, *, classification: bool) -> dict:
    """The candidates whose held-out score is within one paired standard error of the best one's are tied
    (each row gets ``se_to_best`` and ``tied``); classification breaks the tie by held-out accuracy (then by
    score), regression keeps the best score."""
    i_best = int(np.argmax([r["score"] for r in rows]))
    for row, points in zip(rows, pointwise):
        diff = pointwise[i_best] - points
        row["se_to_best"] = float(np.std(diff, ddof=1) / np.sqrt(diff.size)) if diff.size > 1 else 0.0
        row["tied"] = bool(rows[i_best]["score"] - row["score"] <= row["se_to_best"])
    if not classification:
        return rows[i_best]
    return max((r for r in rows if r["tied"]), key=lambda r: (r["accuracy"], r["score"]))


def selection_cost(n_train: int, num_outputs: int, settings: MoGPSettings, *, grid: dict | None = None,
                   criterion: str = "cv", folds: int = 3) -> float:
    """Seconds :func:`select_settings` needs (at most), at the rates of
    :func:`bayes_mogp.mogp.comparison.estimate_cost`: the MAP steps of every candidate (and fold), each fit's
    compilation and eager initialisation (:data:`SELECTION_FIT_SECONDS`), and one eigendecomposition per depth
    and fold."""
    from .comparison import EIGH_SECONDS_PER_N3, step_seconds

    grid = dict(grid or {})
    j = max(grid.get("num_jumps", (settings.num_jumps,)))
    n = int(np.ceil(n_train * (folds - 1) / folds)) if criterion == "cv" else n_train
    depths = grid.get("depths", DEFAULT_DEPTHS)
    fits = len(candidate_grid(n_train, 10**6, depths=depths, ranks=grid.get("ranks", DEFAULT_RANKS),
                              num_jumps=grid.get("num_jumps", (j,))))
    sets = folds if criterion == "cv" else 1
    per_fit = SELECTION_FIT_SECONDS + settings.map_steps * step_seconds(n, j, 1, settings.rotation_dtype)
    return fits * sets * per_fit + len(depths) * sets * EIGH_SECONDS_PER_N3 * n**3
