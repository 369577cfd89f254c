r"""The NumPyro model of MoGP regression: a posterior over random kernels, and how it is sampled.

Model (Lee et al. 2023, eq. (1)-(2) and section 3).  The layers below the last hidden layer are in the GP
regime; the last hidden layer's nodes have per-node variances with drift ``a`` and Levy measure
:math:`\rho`.  In the limit the k outputs are independent GPs given the shared random kernel

.. math::

    K = \sigma_v^2 \Big[(a + R(\lambda_{(J)}))\, K_\phi + \sum_{j \le J} \lambda_{(j)}\,
        \phi(h_j)\phi(h_j)^\top\Big],\qquad Y_{:,c} = Z_c(X) + N(0, \sigma^2 I),

with the J largest jumps by Ferguson-Klass, :math:`\lambda_{(j)} = \bar\rho^{-1}(G_j)`,
:math:`G_j = E_1 + \dots + E_j`, :math:`E_i \sim \mathrm{Exp}(1)` (the latents ``arrivals``), their
features :math:`h_j = B(X) u_j`, :math:`u_j \sim N(0, I_r)` (latents ``features``; the basis
:math:`B` is :class:`bayes_mogp.mogp.features.FeatureMap`), and the remainder
:math:`R(x) = \int_0^x u\,\rho(du)`, the mean of the jumps below the J-th folded into the drift.
Free: ``sigma_v2`` and ``noise`` (:math:`\sigma^2`; log-normal priors, the noise optionally above a
floor) and, with ``drift="free"``, ``drift`` :math:`a` (half-normal).  The log-likelihood is
:func:`bayes_mogp.mogp.likelihood.woodbury_log_likelihood` (one eigendecomposition of :math:`K_\phi`,
then O(n^2 J) per step: no n x n Cholesky per leapfrog step; the rotation of the features in float32 by
default, ``build_problem``'s ``rotation_dtype``).

Inference: a MAP start (``AutoDelta``, Adam) then NUTS from it, every chain from the MAP point, the chains
vectorised by default: the likelihood's cost is the pass over the n x n eigenbasis (memory-bound on a CPU),
and one pass serves every chain's gradient (``chain_method="sequential"``: one chain after the other).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..numerics import require_x64
from ..validation import check_choice, check_finite_array, check_int, check_nonnegative
from . import likelihood as lk
from .features import FeatureMap

__all__ = ["MoGPProblem", "build_problem", "mogp_model", "model_kwargs", "fit_map", "run_nuts", "DRIFTS",
           "CHAIN_SELECTIONS", "CHAIN_SELECTION_WINDOW"]

DRIFTS = ("prior", "free")
CHAIN_METHODS = ("sequential", "vectorized")
CHAIN_SELECTIONS = ("none", "best")  # each chain from its own warmup, or every chain from the best warmup chain
#: ``chain_selection="best"``: the last warmup iterations whose mean log density ranks the chains
CHAIN_SELECTION_WINDOW = 50
SAMPLERS = ("nuts", "smc", "pt")  # NUTS from the MAP start, tempered SMC from the prior (.smc), or parallel
# tempering from the MAP start (.tempering)


class MoGPProblem(NamedTuple):
    """What the model needs that does not change during inference (float64 arrays)."""

    base: lk.EigenBase  # eigendecomposition of K_phi(X, X) and the rotated targets
    basis: jax.Array  # (n, r) B(X): features at the training inputs are basis @ u.T
    activation: str  # the name of phi (FeatureMap.activation)


def build_problem(feature_map: FeatureMap, x, y, *, base: lk.EigenBase | None = None,
                  rotation_dtype: str = "float32") -> MoGPProblem:
    """Base kernel, its eigendecomposition and the feature basis on training inputs ``x`` (n, d), targets
    ``y`` (n, k); both in the model's units.  ``base``: the eigendecomposition of the same inputs' base kernel
    and targets, if already computed (it depends on the depth, activation and variances, not on the rank).
    ``rotation_dtype``: the precision in which the likelihood rotates the features
    (:data:`bayes_mogp.mogp.likelihood.ROTATION_DTYPES`; float32 by default: 1.5x faster per gradient of 4
    vectorised chains at n = 2000, errors far below the Monte Carlo error, :mod:`bayes_mogp.mogp.likelihood`)."""
    require_x64("bayes_mogp.mogp.build_problem")
    x = check_finite_array("x", x, ndim=2)
    y = check_finite_array("y", y)
    if base is None:
        base = lk.eigen_base(np.asarray(feature_map.base_kernel(x)), y)
    return MoGPProblem(lk.with_rotation(base, rotation_dtype), jnp.asarray(feature_map.basis(x)),
                       feature_map.activation)


def _phi(problem: MoGPProblem):
    from .features import FEATURE_ACTIVATIONS

    return FEATURE_ACTIVATIONS[problem.activation]


def mogp_model(problem: MoGPProblem, limit, num_jumps: int, *, drift: str = "free",
               noise_prior=(float(np.log(0.01)), 1.5), noise_floor: float = 0.0, scale_prior=(0.0, 1.0)):
    """The NumPyro model of the module docstring (log-likelihood added with ``numpyro.factor``)."""
    import numpyro
    import numpyro.distributions as dist

    sigma_v2 = numpyro.sample("sigma_v2", dist.LogNormal(*scale_prior))
    noise = numpyro.sample("noise", dist.LogNormal(*noise_prior))
    if noise_floor:
        noise = numpyro.deterministic("noise_total", noise_floor + noise)
    a = numpyro.sample("drift", dist.HalfNormal(2.0)) if drift == "free" else jnp.asarray(float(limit.drift))
    n = problem.basis.shape[0]
    if num_jumps > 0:
        lam = limit.sample_site("jumps", num_jumps, site_names={"arrivals": "arrivals"})
        remainder = limit.remainder_mean(lam[-1])
        u = numpyro.sample("features", dist.Normal(0.0, 1.0).expand([num_jumps, problem.basis.shape[1]])
                           .to_event(2))
        phi = _phi(problem)(problem.basis @ u.T)
    else:
        lam, remainder, phi = jnp.zeros(0), jnp.asarray(0.0), jnp.zeros((n, 0))
    scale = sigma_v2 * (a + remainder)
    numpyro.deterministic("gp_scale", scale)
    ll = lk.woodbury_log_likelihood(problem.base, scale, noise, sigma_v2 * lam, phi)
    numpyro.deterministic("log_marginal_likelihood", ll)
    numpyro.factor("y", ll)


def model_kwargs(problem, limit, num_jumps, *, drift="free", noise_floor=0.0) -> dict:
    """Keyword arguments of :func:`mogp_model`, validated (a GP-regime prior has no jumps to learn)."""
    check_choice("drift", drift, DRIFTS)
    num_jumps = check_int("num_jumps", num_jumps, minimum=1)
    return dict(problem=problem, limit=limit, num_jumps=num_jumps if limit.regime == "MoGP" else 0, drift=drift,
                noise_floor=check_nonnegative("noise_floor", noise_floor))


def fit_map(key, kwargs: dict, *, steps: int = 1500, lr: float = 0.02):
    """MAP by SVI with ``AutoDelta`` and Adam, the start of NUTS; returns (params, losses)."""
    import numpyro
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoDelta

    steps = check_int("map_steps", steps, minimum=1)
    guide = AutoDelta(mogp_model, init_loc_fn=numpyro.infer.init_to_median(num_samples=15))
    svi = SVI(mogp_model, guide, numpyro.optim.Adam(lr), Trace_ELBO())
    res = svi.run(key, steps, progress_bar=False, **kwargs)
    return guide.median(res.params), np.asarray(res.losses)


def run_nuts(key, kwargs: dict, *, num_warmup: int, num_samples: int, num_chains: int = 2,
             init_params: dict | None = None, target_accept_prob: float = 0.85, max_tree_depth: int = 8,
             warmup_tree_depth: int | None = None, dense_mass: bool = False, chain_method: str = "sequential",
             chain_selection: str = "none", progress_bar: bool = False):
    """NUTS over the random kernel (``chain_method``: "sequential" or "vectorized"), by the package's NUTS driver
    (:func:`bayes_mogp.nuts.sample`).  ``warmup_tree_depth``: the tree depth cap during warmup (None:
    ``max_tree_depth``; above or below it; NumPyro's ``max_tree_depth=(warmup, sampling)``).  Returns
    its :class:`~bayes_mogp.nuts.NutsResult` (draws and the ``diverging`` / ``num_steps`` statistics,
    ``(chains, draws, ...)``)."""
    from numpyro.infer import NUTS, init_to_value

    from .. import nuts

    max_tree_depth = check_int("max_tree_depth", max_tree_depth, minimum=1, maximum=12)
    warmup_tree_depth = max_tree_depth if warmup_tree_depth is None else check_int(
        "warmup_tree_depth", warmup_tree_depth, minimum=1, maximum=12)
    depth = max_tree_depth if warmup_tree_depth == max_tree_depth else (warmup_tree_depth, max_tree_depth)
    kernel_kw: dict[str, Any] = dict(target_accept_prob=target_accept_prob, max_tree_depth=depth,
                                     dense_mass=bool(dense_mass))
    if init_params is not None:
        kernel_kw["init_strategy"] = init_to_value(values=init_params)
    check_choice("chain_method", chain_method, CHAIN_METHODS)
    check_choice("chain_selection", chain_selection, CHAIN_SELECTIONS)
    window = min(CHAIN_SELECTION_WINDOW, int(num_warmup)) if chain_selection == "best" else None
    schedule = nuts.Schedule(num_warmup, num_samples, num_chains, chain_method=chain_method)
    return nuts.sample(key, NUTS(mogp_model, **kernel_kw), model_kwargs=kwargs, schedule=schedule,
                       fields=("diverging", "num_steps"), settings=dict(target_accept_prob=target_accept_prob,
                       max_tree_depth=max_tree_depth, warmup_tree_depth=warmup_tree_depth,
                       dense_mass=bool(dense_mass)), progress_bar=progress_bar, select_window=window)
