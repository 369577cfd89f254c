r"""The random-kernel prior of the MoGP limit on a finite set of inputs (Lee et al. 2023, docs/math.md section 2).

One hidden layer, inputs ``x`` (n, d): the outputs are independent GPs given the random kernel

.. math::

    K = \sigma_v^2\Big[(a + R(\lambda_{(J)}))\,E_{z\sim N(0,\Sigma)}[\phi(z)\phi(z)^T]
        + \sum_{j\le J} \lambda_{(j)}\,\phi(z_j)\phi(z_j)^T\Big],\qquad \Sigma = x x^T / d,

:math:`z_j \sim N(0, \Sigma)` iid, :math:`\lambda_{(j)} = \bar\rho^{-1}(G_j)` the J largest jumps
(Ferguson-Klass, :meth:`InfiniteWidthLimit.sample_jumps`), and :math:`R(x) = \int_0^x u\,\rho(du)` the
mean of the jumps left out, folded into the drift.  The truncation error is reported as
``remainder_share`` = :math:`R / (a + R + \sum_j \lambda_{(j)})`, the fraction of :math:`\Lambda`
replaced by its mean (it goes to 0 as J grows).

Deep networks: the kernels form a Markov chain, :math:`\Sigma^{(l+1)} = K` computed as above from
:math:`\Sigma^{(l)}` with fresh jumps and features at each layer (``depth`` hidden layers).

:func:`finite_width_kernel` is the same kernel of a finite network of width p under eq. (1)
(:math:`\sum_{j\le p}\lambda_j\phi(h_j)\phi(h_j)^T`, :math:`\lambda_j` from the width-p prior, at any
depth), the object that converges in law to :func:`sample_random_kernel` (tested in ``tests/test_mogp.py`` at
depths 1 and 2).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..activations import get_activation
from ..validation import check_finite_array, check_int, check_positive

__all__ = ["RandomKernel", "mogp_kernel", "sample_random_kernel", "sample_outputs", "finite_width_kernel"]


class RandomKernel(NamedTuple):
    kernel: jax.Array  # (n, n) the last layer's random kernel
    jumps: jax.Array  # (depth, J) the jumps used at each layer, decreasing
    remainder: jax.Array  # (depth,) R(lambda_(J)) folded into the drift at each layer
    remainder_share: jax.Array  # (depth,) R / (a + R + sum lambda): the truncation error


def _phi(activation):
    """The activation's function and its Gaussian expectation map ``cov -> E[phi(z) phi(z)^T]``."""
    from ..kernels import activation_expectation

    entry = get_activation(activation, closed_form=True)
    return entry.fn, (lambda cov: activation_expectation(activation, cov))


def mogp_kernel(k_phi, base_scale, phi, lam):
    r"""The MoGP kernel :math:`s K_\phi + \Phi\,\mathrm{diag}(\lambda)\,\Phi^\top`, ``(n, n)``, as a sum of two
    kernels (:mod:`bayes_mogp.kernels.layers`): the base kernel ``k_phi`` ``(n, n)`` scaled by the drift
    plus remainder ``base_scale`` :math:`s`, and the features ``phi`` ``(n, J)`` weighted by the jumps
    ``lam`` ``(J,)``."""
    from ..kernels.layers import Kernel, add, feature_kernel, scale

    d = jnp.diagonal(k_phi)
    return add(scale(Kernel(k_phi, None, d, d), base_scale), feature_kernel(phi, None, lam)).nngp


def _psd_factor(cov):
    ev, vec = jnp.linalg.eigh(0.5 * (cov + cov.T))
    return vec * jnp.sqrt(jnp.clip(ev, 0.0, None))


def sample_random_kernel(key, x, limit, *, num_jumps: int = 100, depth: int = 1, activation: str = "relu",
                         sigma_v2: float = 1.0) -> RandomKernel:
    """One draw of the truncated MoGP limit kernel on the inputs ``x`` (n, d); see the module docstring."""
    x = check_finite_array("x", x, ndim=2)
    num_jumps = check_int("num_jumps", num_jumps, 1)
    depth = check_int("depth", depth, 1)
    sigma_v2 = check_positive("sigma_v2", sigma_v2)
    act, expect = _phi(activation)
    x = jnp.asarray(x, dtype=jnp.result_type(float))
    cov = x @ x.T / x.shape[1]
    jumps, rems, shares = [], [], []
    for key_l in jax.random.split(key, depth):
        kj, kz = jax.random.split(key_l)
        lam = limit.sample_jumps(kj, num_jumps)
        rem = limit.remainder_mean(lam[-1])
        z = jax.random.normal(kz, (num_jumps, cov.shape[0]), dtype=cov.dtype) @ _psd_factor(cov).T
        f = act(z)  # (J, n)
        cov = sigma_v2 * mogp_kernel(expect(cov), limit.drift + rem, f.T, lam)
        jumps.append(lam)
        rems.append(rem)
        shares.append(rem / (limit.drift + rem + jnp.sum(lam)))
    return RandomKernel(cov, jnp.stack(jumps), jnp.stack(rems), jnp.stack(shares))


def sample_outputs(key, kernel, num_outputs: int):
    """``num_outputs`` outputs sharing one kernel draw: (num_outputs, n), iid N(0, kernel) given it."""
    num_outputs = check_int("num_outputs", num_outputs, 1)
    return jax.random.normal(key, (num_outputs, kernel.shape[0]), dtype=kernel.dtype) @ _psd_factor(kernel).T


def finite_width_kernel(key, x, prior, *, depth: int = 1, activation: str = "relu", sigma_v2: float = 1.0):
    r"""The kernel of one finite network of width ``prior.width`` per hidden layer (eq. (1)), after ``depth``
    hidden layers: :math:`K^{(l)} = \sigma_v^2 \sum_{j\le p}\lambda^{(l)}_j\phi(h^{(l)}_j)\phi(h^{(l)}_j)^T`
    with fresh :math:`\lambda^{(l)}` from the width-p prior at each layer.

    The first layer's pre-activations are :math:`x V / \sqrt{d}` with ``V`` standard normal.  A deeper
    layer's are :math:`\phi(h^{(l)})\,\mathrm{diag}(\sqrt{\lambda^{(l)}})\,\sigma_v V^{(l)}`: their p columns
    are iid :math:`N(0, K^{(l)})` given the layer below, so they are drawn as such, ``(n, p)`` normals through
    a factor of the n x n kernel rather than the ``(p, p)`` weight matrix (the same law, p / n times
    cheaper)."""
    x = jnp.asarray(check_finite_array("x", x, ndim=2), dtype=jnp.result_type(float))
    depth = check_int("depth", depth, 1)
    act, _ = _phi(activation)
    from ..networks import input_layer

    p = prior.width
    kernel = None
    for layer, key_l in enumerate(jax.random.split(key, depth)):
        kl, kv = jax.random.split(key_l)
        lam = prior.sample(kl, (p,))
        if layer == 0:
            V = jax.random.normal(kv, (x.shape[1], p), dtype=x.dtype)
            h = input_layer(x, V, 0.0, scale=1.0 / np.sqrt(x.shape[1]))  # (n, p): the hidden layer of eq. (1)
        else:
            h = _psd_factor(kernel) @ jax.random.normal(kv, (x.shape[0], p), dtype=x.dtype)  # columns N(0, K)
        f = act(h)
        kernel = sigma_v2 * (f * lam) @ f.T
    return kernel
