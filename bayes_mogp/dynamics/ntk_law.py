r"""The law of the empirical NTK at initialisation: finite width against the infinite-width limit.

Under a per-node variance prior the NTK of a one-hidden-layer network of eq. (1) (NTK parametrisation, the
weights ``V`` trained, the variances fixed) on inputs :math:`x_1..x_n` has the mean diagonal

.. math::

    T_p = \frac1n\sum_i \hat\Theta(x_i, x_i) = \sum_{j\le p} \lambda_j\, g(w_j, v_j), \qquad
    g(w, v) = \frac1n\sum_i \Big[\phi(z_i)^2 + v^2 \phi'(z_i)^2 \frac{\lVert x_i\rVert^2}{d}\Big],
    \quad z_i = w^\top x_i / \sqrt d,

a sum over nodes of the per-node variance times a function of that node's input weights ``w`` and output weight
``v`` (the two terms are the gradients with respect to the output and the input weights).  As the width grows,
:math:`\{\lambda_j\}` converges to a Poisson process with the prior's Lévy measure plus a drift :math:`a`, and

.. math::

    T_p \;\to\; T_\infty = (a + R(\lambda_{(J)}))\,E[g] + \sum_{k\le J} \lambda_{(k)}\, g(w_k, v_k)

in law, with :math:`\lambda_{(k)}` the J largest jumps (Ferguson-Klass), :math:`R(x) = \int_0^x u\,\rho(du)`
the mean of the jumps left out (the same truncation as :func:`bayes_mogp.mogp.sample_random_kernel`),
:math:`(w_k, v_k)` standard normal and :math:`E[g]` in closed form.  In the GP regime the limit is the
constant :math:`a E[g]`; in the MoGP regime it is random: the NTK's spread across initialisations does not
vanish with width.

:func:`initial_ntk_trace` computes :math:`T_p` from neural-tangents' ``empirical_ntk_fn`` on the very network
that :mod:`bayes_mogp.dynamics.lazy` trains (any depth); :func:`limit_ntk_trace` samples :math:`T_\infty`
(depth 1: deeper limits are Markov chains of random kernels whose NTK recursion is not written here);
:func:`compare_ntk_law` sets the two side by side with a two-sample Kolmogorov-Smirnov test.  Written here
because neither neural-tangents nor NumPyro has networks with per-node variances or their random limit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError
from ..priors import get_prior
from ..validation import check_finite_array, check_int

__all__ = ["initial_ntk_trace", "limit_ntk_trace", "compare_ntk_law"]


def _inputs(key, settings, x):
    from .lazy import toy_problem

    if x is None:
        return toy_problem(key, settings.n_train, settings.n_test, settings.input_dim)[0]
    x = check_finite_array("x", x, ndim=2)
    if x.shape[1] != settings.input_dim:
        raise InputError(f"x must have settings.input_dim = {settings.input_dim} columns, got shape {x.shape}")
    return jnp.asarray(x)


def initial_ntk_trace(key, prior_name: str, width: int, settings, *, num_inits: int, x=None, hyper=None):
    r""":math:`T_p` (module docstring) of ``num_inits`` networks of hidden width ``width`` drawn as
    :func:`bayes_mogp.dynamics.measure_width` draws them: ``(num_inits,)``, from neural-tangents'
    ``empirical_ntk_fn`` on ``x`` (default: the training inputs of :func:`bayes_mogp.dynamics.toy_problem`
    from ``key``'s first split, as ``measure_width`` uses)."""
    from ..kernels import import_neural_tangents
    from .lazy import _network, stacked_inits

    nt = import_neural_tangents()
    width = check_int("width", width, minimum=1)
    num_inits = check_int("num_inits", num_inits, minimum=2)
    k_data, k_init = jax.random.split(key)
    x = _inputs(k_data, settings, x)
    apply = _network(settings)
    hyper = dict(hyper or {})

    def one(args):
        V, lam = args
        ntk = nt.empirical_ntk_fn(lambda V_, x_: apply(V_, lam, x_), trace_axes=(-1,), vmap_axes=0)
        return jnp.mean(jnp.diagonal(ntk(x, None, V)))

    stacked = stacked_inits(k_init, prior_name, width, settings, hyper, num_inits)
    return np.asarray(jax.lax.map(jax.jit(one), stacked), dtype=float)


def limit_ntk_trace(key, prior_name: str, settings, *, num_draws: int, x=None, num_jumps: int = 256, hyper=None):
    r"""``num_draws`` draws of :math:`T_\infty` (module docstring), the infinite-width law of
    :func:`initial_ntk_trace` at depth 1: ``(draws, remainder_share)``, the latter the largest share over draws
    of the mean value :math:`R E[g]` that stands in for the jumps beyond the ``num_jumps`` largest (the
    truncation error; it falls as ``num_jumps`` grows).  ``x`` as in :func:`initial_ntk_trace`; the width
    passed to the prior only names its family (the limit does not depend on it)."""
    from ..activations import get_activation

    if settings.depth != 1:
        raise InputError(f"limit_ntk_trace: settings.depth must be 1 (the depth-1 limit law), got {settings.depth}")
    num_draws = check_int("num_draws", num_draws, minimum=2)
    num_jumps = check_int("num_jumps", num_jumps, minimum=1)
    k_data, k_draw = jax.random.split(key)
    x = _inputs(k_data, settings, x)
    limit = get_prior(prior_name, 1000, **dict(hyper or {})).limit
    entry = get_activation(settings.activation, closed_form=True)
    phi = entry.fn
    dphi = jax.vmap(jax.grad(phi))
    d = x.shape[1]
    s = jnp.sum(x * x, axis=1) / d  # the pre-activation variances |x_i|^2 / d
    mean_g = jnp.mean(entry.diag(s) + entry.derivative_diag(s) * s)  # E[phi(z)^2] + E[phi'(z)^2] |x|^2/d

    def one(k):
        kj, kw, kv = jax.random.split(k, 3)
        lam = limit.sample_jumps(kj, num_jumps)
        left_out_mean = limit.remainder_mean(lam[-1])
        z = jax.random.normal(kw, (num_jumps, d), x.dtype) @ x.T / jnp.sqrt(d)  # (J, n)
        v = jax.random.normal(kv, (num_jumps,), x.dtype)
        g = jnp.mean(phi(z) ** 2 + (v**2)[:, None] * dphi(z.ravel()).reshape(z.shape) ** 2 * s, axis=1)
        total = (limit.drift + left_out_mean) * mean_g + jnp.sum(lam * g)
        left_out = left_out_mean * mean_g
        return total, jnp.where(total > 0, left_out / jnp.where(total > 0, total, 1.0), 0.0)

    draws, shares = jax.lax.map(jax.jit(one), jax.random.split(k_draw, num_draws))
    return np.asarray(draws, dtype=float), float(np.max(shares))


def compare_ntk_law(key, prior_name: str, width: int, settings, *, num_inits: int = 200, num_draws: int = 4000,
                    num_jumps: int = 256, hyper=None) -> dict:
    """The initial NTK's mean diagonal of ``num_inits`` networks of width ``width`` against ``num_draws`` draws
    of its infinite-width law (depth 1), on the same inputs: medians, interquartile ranges over medians (the
    spread; robust where the law has no finite variance, as for the horseshoe), the two-sample KS statistic and
    p-value (SciPy ``ks_2samp``), and the truncation's ``remainder_share``.

    In the GP regime the limit is the constant :math:`a E[g]`: there the KS entries are None (a test against a
    point mass says no more than the median) and the finite spread is what falls with width, as
    :math:`p^{-1/2}`."""
    from scipy.stats import ks_2samp

    k_x, k_fin, k_lim = jax.random.split(key, 3)
    x = _inputs(k_x, settings, None)
    finite = initial_ntk_trace(k_fin, prior_name, width, settings, num_inits=num_inits, x=x, hyper=hyper)
    limit, share = limit_ntk_trace(k_lim, prior_name, settings, num_draws=num_draws, x=x, num_jumps=num_jumps,
                                   hyper=hyper)

    def spread(a):
        q1, q2, q3 = np.quantile(a, [0.25, 0.5, 0.75])
        return float(q2), float((q3 - q1) / q2) if q2 > 0 else float("nan")

    (med_f, iqr_f), (med_l, iqr_l) = spread(finite), spread(limit)
    regime = get_prior(prior_name, width, **dict(hyper or {})).limit.regime
    ks = ks_2samp(finite, limit) if regime == "MoGP" else None
    return {"prior": prior_name, "regime": regime, "width": int(width), "num_inits": int(num_inits), "num_draws": int(num_draws),
            "median_finite": med_f, "median_limit": med_l, "iqr_over_median_finite": iqr_f,
            "iqr_over_median_limit": iqr_l, "ks_statistic": None if ks is None else float(ks.statistic),
            "ks_pvalue": None if ks is None else float(ks.pvalue),
            "remainder_share": share, "finite": finite, "limit": limit}
