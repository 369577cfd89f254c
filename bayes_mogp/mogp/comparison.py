r"""The MoGP against the NNGP on the same data: what ``bayes-mogp mogp`` reports, as a library function.

:func:`compare` fits the MoGP posterior (:func:`bayes_mogp.mogp.fit`) and the exact NNGP with the same
base architecture (depth, activation, weight and bias variances; noise and amplitude by marginal
likelihood on the training data only, :func:`bayes_mogp.nngp.fit`), scores both on the test part with
:func:`bayes_mogp.metrics.score` and on the training data by leave-one-out (``elpd_loo``: PSIS-LOO over
the MoGP's draws of the exact conditional terms, the exact LOO of the NNGP), and adds the MoGP's sampling diagnostics, its active features, the
pruned network's score and, at depth 1, the learned feature directions.

:func:`estimate_cost` is the size check run before any of it: memory of the (n, n) eigendecomposition
and of the (n, m) train-test kernels, and time of the eigendecomposition plus NUTS, with the gradient
cost :math:`\approx 12\, n^2 (J + k)` flops (the rotation :math:`U^\top\Phi` and its adjoint dominate),
:math:`2^{\text{max\_tree\_depth}} - 1` leapfrog steps per iteration (the cap: MoGP trajectories reach
it), :data:`VECTORIZED_SHARE` of that per chain when the chains are vectorised, :data:`ROTATION_SHARE` of it
with the rotation in float32, and a stated machine rate.
With ``sampler="smc"``: :data:`SMC_TEMPERING_STEPS` (+1 final) rounds of HMC moves of every particle of every
run instead of the MAP and NUTS, vectorised.
"""

from __future__ import annotations

import time
import warnings
from typing import NamedTuple

import numpy as np

from .posterior import MoGPPosterior, fit
from .settings import MoGPSettings
from ..errors import InputError

__all__ = ["Comparison", "compare", "estimate_cost", "FLOP_RATE", "VECTORIZED_SHARE", "ROTATION_SHARE",
           "SMC_TEMPERING_STEPS"]

#: sustained float64 flop rate assumed by :func:`estimate_cost` (measured on 2 CPU cores: 1e10 to 2e10)
FLOP_RATE = 1e10
#: cost per chain of vectorised chains relative to sequential ones (4 chains against 2 on 2 CPU cores: 0.54 at
#: n = 2000, 0.63 at n = 300; the larger is kept).  Measured before the sampler kept its own copy of U^T, which
#: made a single chain's gradient 2.3x cheaper and left the vectorised one as it was (now about 0.7 per chain).
#: The estimate is a loose upper bound: 3070 s for `30,2000,2,relu` at the defaults, which take 190-210 s on 2 cores
#: (a vectorised step of 4 chains takes 4.4 ms where this model counts 79 ms)
VECTORIZED_SHARE = 0.65
#: cost of a gradient with the features rotated in each precision, relative to float64 (float32: 6.1 against 9.0 ms
#: per step of 4 vectorised chains at n = 2000 on 2 CPU cores)
ROTATION_SHARE = {"float64": 1.0, "float32": 0.7}
#: tempering steps assumed per SMC run by :func:`estimate_cost` (measured 37-58 on the teacher cases at the
#: default target ESS of 0.9; the schedule is adaptive, so this is an estimate, not a cap)
SMC_TEMPERING_STEPS = 60


class Comparison(NamedTuple):
    mogp: MoGPPosterior
    nngp: object  # bayes_mogp.nngp.NNGPPosterior
    result: dict  # the JSON-able report


def estimate_cost(n_train: int, n_test: int, num_outputs: int, settings: MoGPSettings) -> dict:
    """Seconds and bytes a MoGP fit and its test predictions need (module docstring)."""
    s = settings
    n, m, k, j = n_train, n_test, num_outputs, s.num_jumps
    # + the sampler's copies of the eigenbasis: U and U^T in float32, or U^T in float64 (8 n^2 bytes either way)
    bytes_ = 8 * (4 * n * n + 3 * n * max(m, 1) + 4 * n * (j + k)) + 8 * n * n
    if s.sampler == "smc":  # every run's particles vectorised; no MAP start
        steps = s.num_chains * (SMC_TEMPERING_STEPS + 1) * s.smc_particles * s.smc_moves * (s.smc_leapfrog + 1)
        shared, map_steps, draws = VECTORIZED_SHARE, 0, s.num_chains * s.smc_particles
    else:
        steps = s.num_chains * (s.num_warmup * (2 ** s.effective_warmup_tree_depth - 1)
                                + s.num_samples * (2 ** s.max_tree_depth - 1))
        # vectorised chains share each pass over the eigenbasis: measured 0.54-0.63 of the sequential cost per chain
        shared = VECTORIZED_SHARE if s.chain_method == "vectorized" and s.num_chains > 1 else 1.0
        map_steps, draws = s.map_steps, s.num_chains * s.num_samples
    rot = ROTATION_SHARE[s.rotation_dtype]
    flops = 10 * n**3 * 2 + rot * (map_steps + shared * steps) * 12 * n * n * (j + k)
    flops += draws * 4 * n * m * (j + k) * 3
    return {"seconds": flops / FLOP_RATE, "bytes": bytes_, "leapfrog_steps_max": steps}


def compare(key, data, settings: MoGPSettings | None = None, *, log=None, progress: bool = False,
            **overrides) -> Comparison:
    """Fit the MoGP and the NNGP on ``data`` (a :class:`bayes_mogp.data.Dataset` with a test part with
    targets) and report both side by side; ``settings`` and ``overrides`` as :func:`bayes_mogp.mogp.fit`."""
    from .. import nngp
    from ..metrics import score

    if data.x_test is None or data.y_test is None:
        raise InputError(f"{data.name}: the comparison needs a test part with targets (x_test and y_test/labels_test)")
    t0 = time.perf_counter()
    post = fit(key, data, settings=settings, log=log, progress=progress, **overrides)
    comps = post.predict_components(data.x_test)
    # classification: the quadrature of every draw's class probabilities, once for the scores and the per-chain
    # diagnostics both
    chain_probs = post.chain_class_probabilities(*comps) if data.task == "classification" else None
    import arviz as az

    mogp_scores = {**post.evaluate(data.x_test, data.y_test, components=comps, chain_probs=chain_probs),
                   **{k: v for k, v in post.timings.items() if k != "seconds"}, "seconds": time.perf_counter() - t0}
    with warnings.catch_warnings():  # a high Pareto k is reported as pareto_k_max, not printed
        warnings.simplefilter("ignore", UserWarning)
        loo = az.loo(post.to_inference_data())
    mogp_scores.update(elpd_loo=float(loo.elpd_loo), pareto_k_max=float(np.max(loo.pareto_k)))
    diag = post.diagnostics(targets=data.y_test, components=comps, chain_probs=chain_probs)
    s = post.settings
    t1 = time.perf_counter()
    if log:
        log(f"mogp: NNGP baseline, depth {s.depth} (noise by marginal likelihood)")
    gp = nngp.fit(key, data, kernel="nngp", depth=s.depth, activation=s.activation, w_var=s.w_var, b_var=s.b_var,
                  noise="ml")
    nngp_scores = {**score(gp.predict(data.x_test), data.y_test), "seconds": time.perf_counter() - t1,
                   "relative_noise": gp.relative_noise, "amplitude": gp.amplitude,
                   "elpd_loo": float(np.sum(gp.pointwise_loo()))}
    active = post.active_features()
    if active is not None and s.depth == 1:
        dirs = post.feature_directions()
        active["direction_concentration"] = dirs["concentration"]
        active["bias_median"] = dirs["bias_median"]
    result = {"task": data.task, "dataset": data.name, "prior": s.prior_name, "n_train": data.n_train,
              "n_test": data.n_test, "settings": s.to_dict(), "results": {"mogp": mogp_scores, "nngp": nngp_scores},
              "diagnostics": diag, "active_features": active}
    return Comparison(post, gp, result)
