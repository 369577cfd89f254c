r"""The MoGP against the NNGP on the same data: what ``bayes-mogp mogp`` reports, as a library function.

:func:`compare` fits the MoGP posterior (:func:`bayes_mogp.mogp.fit`) and the exact NNGP with the same
base architecture (depth, activation, weight and bias variances; noise and amplitude by marginal
likelihood on the training data only, :func:`bayes_mogp.nngp.fit`), scores both on the test part with
:func:`bayes_mogp.metrics.score` and on the training data by leave-one-out (``elpd_loo``: PSIS-LOO over
the MoGP's draws of the exact conditional terms, the exact LOO of the NNGP), and adds the MoGP's sampling diagnostics, its active features, the
pruned network's score and, at depth 1, the learned feature directions.

:func:`estimate_cost` is the size check run before any of it: memory of the (n, n) eigendecomposition
and of the (n, m) train-test kernels, and time.  The time is a sum of measured parts (rates of 2 CPU cores,
below): the compilation of the MAP and NUTS programs (a constant), the eigendecomposition (:math:`n^3`), the
MAP's Adam steps and NUTS's leapfrog steps, each a fixed cost plus the rotation :math:`U^\top\Phi` and its
adjoint, :math:`4 n^2 J` flops per chain at a rate measured for each rotation precision (one pass over the
eigenbasis serves every vectorised chain), the NNGP baseline (:math:`n^3`) and the predictions of every draw,
then of the pruned networks (the report's pruning curve), with the class probabilities' quadrature for
classification.  NUTS is counted at :math:`2^{\text{depth}} - 1` leapfrog steps per iteration (the warmup at
its own cap): an upper bound that the MoGP's trajectories reach (127 steps per sampling iteration at the default
depth 7 on five of the six teacher cases of ``benchmarks/bench_mogp_teacher.py``, 121.7 on the sixth), so the
estimate is what a fit takes at most on such a machine, not a guess of what it usually takes.
With ``sampler="smc"``: :data:`SMC_TEMPERING_STEPS` (+1 final) rounds of HMC moves of every particle of every
run instead of the MAP and NUTS, all vectorised; with ``sampler="pt"``: the MAP, then one HMC move of every
replica of every chain per iteration (warmup and sampling, each rounded up to a multiple of 10), all vectorised.
"""

from __future__ import annotations

import time
import warnings
from typing import NamedTuple

import numpy as np

from .posterior import MoGPPosterior, fit, pruned_sizes
from .settings import MoGPSettings
from ..errors import InputError
from ..prediction import CLASS_PROBABILITY_NODES

__all__ = ["Comparison", "compare", "estimate_cost", "step_seconds", "COMPILE_SECONDS", "STEP_SECONDS",
           "ROTATION_RATE", "EIGH_SECONDS_PER_N3", "NNGP_SECONDS_PER_N3", "NNGP_SECONDS", "FLOP_RATE", "CDF_SECONDS",
           "SMC_TEMPERING_STEPS"]

#: the rates behind :func:`estimate_cost`, measured on 2 CPU cores (Intel Xeon, JAX's CPU backend, 2026-12-06) with
#: ``benchmarks/bench_mogp_teacher.py`` (seconds of each whole fit against its step counts) and the isolated
#: gradients of ``benchmarks/bench_mogp.py``.  Each is rounded to the slow side, so that the estimate stays an
#: upper bound on a loaded machine.
#:
#: seconds to trace and compile the MAP and NUTS programs (measured 25-28 s at n = 300 in a fresh process, two
#: thirds of it the many small programs of NumPyro's eager initialisation; a whole fit at n = 100 took 35 s)
COMPILE_SECONDS = 36.0
#: seconds per MAP or NUTS step besides the rotation (NUTS's tree building and the gradient's other terms;
#: measured: 0.38 ms per vectorised step of 4 chains at n = 300, where the rotation takes 0.13 ms)
STEP_SECONDS = 3e-4
#: flop rate of the rotation and its adjoint (4 n^2 J flops per chain and gradient) in each precision (float32:
#: 512 Mflop in 4.4-4.9 ms per vectorised step of 4 chains at n = 2000, J = 8; 1.4 ms for one chain; float64
#: about half as fast)
ROTATION_RATE = {"float32": 9e10, "float64": 4.5e10}
#: seconds per n^3 of the float64 eigendecomposition of the base kernel (1.2 s at n = 2000, 3.4 s at 3000)
EIGH_SECONDS_PER_N3 = 1.6e-10
#: seconds per n^3 of the NNGP baseline (its kernel, the noise by marginal likelihood and its predictions; 2.2-3.6 s at
#: n = 300-2000, most of it compilation at the smaller sizes)
NNGP_SECONDS_PER_N3 = 5e-10
#: seconds of the NNGP baseline besides its n^3 part
NNGP_SECONDS = 4.0
#: sustained float64 flop rate of the predictions (every draw's mean and variance at the test inputs: 10 s for 400
#: draws at n = m = 1000, J = 8, C = 10)
FLOP_RATE = 1e10
#: seconds per normal CDF of the classification's quadrature, counted as C (C - 1) per node, 48 nodes per test point
#: and draw (12.9 s for 400 draws at m = 1000, C = 10: 7.4 ns each)
CDF_SECONDS = 1e-8
#: tempering steps assumed per SMC run by :func:`estimate_cost` (measured 37-58 on the teacher cases at the
#: default target ESS of 0.9; the schedule is adaptive, so this is an estimate, not a cap)
SMC_TEMPERING_STEPS = 60


class Comparison(NamedTuple):
    mogp: MoGPPosterior
    nngp: object  # bayes_mogp.nngp.NNGPPosterior
    result: dict  # the JSON-able report


def step_seconds(n: int, num_features: int, columns: int, rotation_dtype: str) -> float:
    """Seconds of one MAP or leapfrog step at ``n`` training points for ``columns`` vectorised chains (or
    particles) of ``num_features`` (J) features each: :data:`STEP_SECONDS` plus the rotation and its adjoint at
    :data:`ROTATION_RATE`."""
    return STEP_SECONDS + 4.0 * n * n * num_features * columns / ROTATION_RATE[rotation_dtype]


def estimate_cost(n_train: int, n_test: int, num_outputs: int, settings: MoGPSettings, *,
                  classification: bool | None = None) -> dict:
    """Seconds (at most, module docstring) and bytes a MoGP fit, its NNGP baseline and its test predictions need;
    ``leapfrog_steps_max``: the gradient evaluations of the sampler, summed over chains (and particles).
    ``classification``: whether the ``num_outputs`` are classes (None: when there are more than one)."""
    s = settings
    n, m, k, j = n_train, n_test, num_outputs, s.num_jumps
    # + the sampler's copies of the eigenbasis: U and U^T in float32, or U^T in float64 (8 n^2 bytes either way)
    bytes_ = 8 * (4 * n * n + 3 * n * max(m, 1) + 4 * n * (j + k)) + 8 * n * n
    rot = s.rotation_dtype
    if s.sampler == "smc":  # every run's particles vectorised in one step; no MAP start
        rounds = (SMC_TEMPERING_STEPS + 1) * s.smc_moves * (s.smc_leapfrog + 1)
        columns = s.num_chains * s.smc_particles
        steps, draws = rounds * columns, columns
        sampling = rounds * step_seconds(n, j, columns, rot)
        map_seconds = 0.0
    elif s.sampler == "pt":  # every replica of every chain vectorised in one step, after the MAP
        from .tempering import PTConfig

        blocks = PTConfig(num_warmup=s.num_warmup, num_samples=s.num_samples).blocks()
        rounds = sum(blocks) * PTConfig().block * (s.pt_leapfrog + 1)
        columns = s.num_chains * s.pt_temperatures
        steps, draws = rounds * columns, s.num_chains * s.num_samples
        sampling = rounds * step_seconds(n, j, columns, rot)
        map_seconds = s.map_steps * step_seconds(n, j, 1, rot)
    else:
        per_chain = (s.num_warmup * (2 ** s.effective_warmup_tree_depth - 1)
                     + s.num_samples * (2 ** s.max_tree_depth - 1))
        steps, draws = s.num_chains * per_chain, s.num_chains * s.num_samples
        if s.chain_method == "vectorized" and s.num_chains > 1:  # one pass over the eigenbasis serves every chain
            sampling = per_chain * step_seconds(n, j, s.num_chains, rot)
        else:
            sampling = steps * step_seconds(n, j, 1, rot)
        map_seconds = s.map_steps * step_seconds(n, j, 1, rot)
    # the test predictions: every draw's, then those of the pruned networks (1, J/2 and J jumps, no GP part); for
    # classification each with its class probabilities by quadrature (48 nodes)
    passes = 1 + len(pruned_sizes(j))
    classes = k > 1 if classification is None else bool(classification)
    quadrature = m * k * (k - 1) * CLASS_PROBABILITY_NODES * CDF_SECONDS if classes else 0.0
    predict = passes * draws * (4 * n * m * (j + k) * 3 / FLOP_RATE + quadrature)
    seconds = (COMPILE_SECONDS + EIGH_SECONDS_PER_N3 * n**3 + map_seconds + sampling
               + NNGP_SECONDS + NNGP_SECONDS_PER_N3 * n**3 + predict)
    return {"seconds": seconds, "bytes": bytes_, "leapfrog_steps_max": steps}


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
