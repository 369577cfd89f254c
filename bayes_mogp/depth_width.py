r"""Depth and width together: the log-Gaussian law of deep ReLU networks.

"The notes" below are the notes this module implements, after Hanin & Nica (2020), *Products of many
large random matrices and gradients in deep neural networks* (Comm. Math. Phys.).

Network (all weights iid :math:`N(0, 1)`, hidden widths :math:`n_0, \dots, n_d`)::

    z^0   = n_in^{-1/2} W^0 x                              W^0: (n_0, n_in)
    z^l   = (2 / n_{l-1})^{1/2} W^l relu(z^{l-1}),  l=1..d  W^l: (n_l, n_{l-1})
    z_out = n_d^{-1/2} W_out z^d                           W_out: (n_out, n_d)

and the ResNet variant (equal widths n) ``z^l = alpha z^{l-1} + lam (2/n)^{1/2} W^l relu(z^{l-1})`` with
:math:`\alpha^2 + \lambda^2 = 1`.

**Exact representation** (the notes, eq. 4-5).  Because :math:`W v \overset{d}{=} |v|\, g` for a Gaussian
matrix and ReLU is positively homogeneous, for *any* widths and depth

.. math::
    z_{out} \overset{d}{=} \frac{|x|}{\sqrt{n_{in}}}\, e^{G/2}\, g,\qquad
    G = \ln\frac{|z^d|^2/n_d}{|x|^2/n_{in}}
      = \sum_{l=0}^{d-1} \ln\Big(\frac{2}{n_l}\,\chi^2_{B_l}\Big) + \ln\frac{\chi^2_{n_d}}{n_d},

with :math:`g \sim N(0, I_{n_{out}})`, :math:`B_l \sim \mathrm{Binomial}(n_l, 1/2)` and all terms
independent.  :func:`sample_g_exact` draws G from this product in O(d) draws per sample; it is exact in law
for the MLP at every n and d, equal or unequal widths.  With probability
:math:`1 - \prod_{l<d}(1 - 2^{-n_l})` some :math:`B_l = 0`: every ReLU of a layer is off, the output is
exactly 0 and :math:`G = -\infty`; both samplers return ``-inf`` there and the statistics condition on
:math:`G > -\infty` (negligible for n >= 30: :math:`2^{-30} \approx 10^{-9}`).

**Convention for unequal widths.**  The product gives (first order in :math:`1/n_l`)

.. math::  \beta = 5 \sum_{l=0}^{d-1} \frac{1}{n_l} + \frac{2}{n_d},

layer :math:`l < d` contributing :math:`5/n_l` (a ReLU layer of width :math:`n_l`) and the *last* hidden
layer :math:`2/n_d` (a chi-square).  The notes write :math:`2/n_0 + 5\sum_{l=1}^d 1/n_l`, the same for equal
widths but with the layers in the other order; simulation sides with the derivation
(``tests/test_depth_width.py::test_unequal_widths_beta_convention``).  This module uses the derivation.

**Log-Gaussian limit.**  :math:`G \approx N(-\beta/2, \beta)` with errors :math:`O(d/n^2)`; for equal widths
:math:`\beta = 2/n + 5d/n`.  The second-order terms, from the Taylor expansion of :math:`\ln(1+Y)` with the
central moments of :math:`2 g^2 1\{g>0\}` (:math:`\mu_2 = 5, \mu_3 = 44, \mu_4 = 633`) and of :math:`g^2`
(2, 8, 60), are

.. math::
    E[G] = -\frac{\beta}{2} - \sum_{l<d}\frac{49}{12 n_l^2} - \frac{1}{3 n_d^2} + O(d/n^3),\qquad
    \mathrm{Var}[G] = \beta + \sum_{l<d}\frac{37}{2 n_l^2} + \frac{2}{n_d^2} + O(d/n^3)

(:func:`second_order_moments`); :func:`exact_moments` gives the exact finite-width moments from
digamma/trigamma sums over the binomial.  The infinite-width (GP) prediction is :math:`G = 0`.

**ResNets.**  The notes give :math:`\beta = 2/n + (5\lambda^4 + 4\alpha^2\lambda^2)\, d/n`
(:func:`beta_resnet`).  There is no exact product form for a ResNet (the direction of :math:`z^l` is no
longer uniform), so ResNets are sampled by network simulation only.  Measured here: the *standard* ReLU
ResNet above does **not** follow this beta -- its ReLUs are correlated from layer to layer and Var G is
larger (n = 50, d = 25, alpha = 0.5: Var G = 3.6 against beta = 1.82), the interlayer correlations of
Li, Nica & Roy (2021).  Their *balanced* ResNet removes those correlations; we implement it
(``resnet="balanced"``) by drawing an independent random sign :math:`\epsilon_i = \pm 1` per neuron and
layer, ``relu(eps * z)`` (our construction after their description -- activation exactly 1/2 in mean,
no interlayer correlation; we have not checked it against their paper's definition in detail).  What we
claim is measured: this network matches the beta formula within Monte Carlo error plus 5 d/n^2 (mean) and
20 d/n^2 (variance) for alpha = 0.3, 0.6, 0.9 at n = 50, d = 10 (``tests/test_depth_width.py``).

**Gradients.**  For ReLU networks and :math:`|x| = 1`, each column :math:`\partial z_{out}/\partial x_i`
of the input-output Jacobian has the law of :math:`z_{out}` (the notes, section 1.2.3);
``simulate_network(..., jacobian_column=i)`` samples it by forward-mode differentiation of the simulated
network (the tangent recursion with the ReLU derivative masks, exact for this piecewise-linear map).

Shapes: samplers return float64 NumPy arrays of shape ``(num_samples,)``.  Network simulation draws
:math:`\sum_l n_l n_{l-1}` normals per sample (d n^2), batched over a chunk of networks (batched matmul)
and looped over chunks so that memory stays at ``chunk_size * max(n_l n_{l-1})`` numbers.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special, stats

from .validation import check_choice, check_in_interval, check_int
from .errors import InputError

__all__ = [
    "as_widths",
    "beta_mlp",
    "beta_resnet",
    "log_gaussian_moments",
    "second_order_moments",
    "exact_moments",
    "output_log_norm_moments",
    "output_log_norm_density",
    "sample_g_exact",
    "sample_output_log_norm_exact",
    "NetworkSamples",
    "simulate_network",
    "GSummary",
    "summarize_g",
    "plot_log_norm_densities",
    "estimate_cost",
    "exact_work_units",
    "EXACT_LAYERS_PER_SECOND",
    "NETWORK_WEIGHTS_PER_SECOND",
]

RESNET_VARIANTS = ("standard", "balanced")


# --------------------------------------------------------------------------------------------------
# Theory
# --------------------------------------------------------------------------------------------------
def as_widths(width=None, depth=None, widths: Sequence[int] | None = None) -> tuple[int, ...]:
    """The hidden widths ``(n_0, ..., n_d)``: ``depth + 1`` copies of ``width``, or ``widths`` checked.

    ``widths`` lists one width per hidden vector z^0..z^d (so ``len(widths) = depth + 1``); when both are
    given they must agree.
    """
    if widths is not None:
        if not (isinstance(widths, tuple) and widths and type(widths[0]) is int and widths[0] >= 1
                and widths.count(widths[0]) == len(widths)):  # else: equal widths, checked at C speed
            widths = tuple(check_int(f"widths[{i}]", w, minimum=1) for i, w in enumerate(widths))
        if len(widths) < 1:
            raise InputError("widths must list at least one width (n_0), got an empty list")
        if depth is not None and check_int("depth", depth, minimum=0) != len(widths) - 1:
            raise InputError(
                f"widths must list depth + 1 = {int(depth) + 1} widths (n_0..n_d), got {len(widths)}"
            )
        return widths
    if width is None or depth is None:
        raise InputError("give width and depth, or widths")
    width = check_int("width", width, minimum=1)
    depth = check_int("depth", depth, minimum=0)
    return (width,) * (depth + 1)


def beta_mlp(widths: Sequence[int]) -> float:
    r""":math:`\beta = 5\sum_{l<d} 1/n_l + 2/n_d` for hidden widths ``(n_0, ..., n_d)`` (module docstring).

    Equal widths: :math:`2/n + 5d/n`.
    """
    w = np.asarray(as_widths(widths=widths), dtype=float)
    return float(5.0 * np.sum(1.0 / w[:-1]) + 2.0 / w[-1])


def beta_resnet(width: int, depth: int, alpha: float) -> float:
    r""":math:`\beta = 2/n + (5\lambda^4 + 4\alpha^2\lambda^2) d/n`, :math:`\lambda^2 = 1 - \alpha^2` (the notes, 1.2.2).

    Holds for the balanced ResNet; the standard ReLU ResNet has interlayer correlations that make
    Var G larger (module docstring).  ``alpha = 0`` is the MLP, ``alpha = 1`` the identity (beta = 2/n).
    """
    n = check_int("width", width, minimum=1)
    d = check_int("depth", depth, minimum=0)
    a = check_in_interval("alpha", alpha, 0.0, 1.0)
    lam2 = 1.0 - a * a
    return float(2.0 / n + (5.0 * lam2**2 + 4.0 * a * a * lam2) * d / n)


def log_gaussian_moments(beta: float) -> tuple[float, float]:
    """Mean and variance of G under the log-Gaussian limit: ``(-beta / 2, beta)``."""
    return -0.5 * float(beta), float(beta)


def second_order_moments(widths: Sequence[int]) -> tuple[float, float]:
    r"""Mean and variance of G for the MLP to second order in :math:`1/n_l` (module docstring).

    The differences from :func:`log_gaussian_moments` are the stated :math:`O(d/n^2)` terms: for
    n = 100, d = 100 they are -0.041 (mean) and +0.185 (variance).
    """
    w = np.asarray(as_widths(widths=widths), dtype=float)
    beta = beta_mlp(w.astype(int))
    mean = -0.5 * beta - np.sum(49.0 / (12.0 * w[:-1] ** 2)) - 1.0 / (3.0 * w[-1] ** 2)
    var = beta + np.sum(18.5 / w[:-1] ** 2) + 2.0 / w[-1] ** 2
    return float(mean), float(var)


def _relu_layer_moments(n: int) -> tuple[float, float]:
    """Exact mean and variance of ln((2/n) chi2_B), B ~ Binomial(n, 1/2), conditioned on B >= 1."""
    k = np.arange(1, n + 1)
    logp = special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1) - n * np.log(2.0)
    p = np.exp(logp)
    p = p / p.sum()  # condition on B >= 1
    psi = special.digamma(k / 2.0)
    mean = np.log(4.0 / n) + np.sum(p * psi)
    var = np.sum(p * special.polygamma(1, k / 2.0)) + np.sum(p * (psi - np.sum(p * psi)) ** 2)
    return float(mean), float(var)


def exact_moments(widths: Sequence[int]) -> tuple[float, float]:
    r"""Exact mean and variance of G for the MLP at finite widths, given that the output is not 0.

    Sum over layers of :math:`E\ln\chi^2_k = \ln 2 + \psi(k/2)` and :math:`\mathrm{Var}\ln\chi^2_k =
    \psi'(k/2)`, with k averaged over Binomial(n_l, 1/2) (conditioned on k >= 1) for the ReLU layers.
    """
    w = as_widths(widths=widths)
    mean = special.digamma(w[-1] / 2.0) + np.log(2.0 / w[-1])
    var = special.polygamma(1, w[-1] / 2.0)
    if len(w) > 1:
        values, counts = np.unique(np.asarray(w[:-1], dtype=np.int64), return_counts=True)
        for n, k in zip(values.tolist(), counts.tolist()):
            m, v = _relu_layer_moments(n)
            mean += k * m
            var += k * v
    return float(mean), float(var)


def output_log_norm_moments(beta: float, n_in: int, n_out: int, x_norm_sq: float | None = None):
    r"""Predicted mean and variance of :math:`\ln|z_{out}|^2 = \ln(|x|^2/n_{in}) + G + \ln\chi^2_{n_{out}}`.

    ``x_norm_sq`` defaults to ``n_in`` (the input ``x = 1``), so the offset is 0.  With ``beta = 0``
    this is the infinite-width (Gaussian) prediction.
    """
    n_in = check_int("n_in", n_in, minimum=1)
    n_out = check_int("n_out", n_out, minimum=1)
    offset = 0.0 if x_norm_sq is None else float(np.log(x_norm_sq / n_in))
    mean = offset - 0.5 * beta + special.digamma(n_out / 2.0) + np.log(2.0)
    var = beta + special.polygamma(1, n_out / 2.0)
    return float(mean), float(var)


def _log_chi2_pdf(y, k: int):
    """Density of ln(chi2_k) at y."""
    return np.exp(stats.chi2.logpdf(np.exp(y), k) + y)


def output_log_norm_density(y, beta: float, n_in: int, n_out: int, x_norm_sq: float | None = None,
                            *, grid_size: int = 4001):
    r"""Predicted density of :math:`\ln|z_{out}|^2` at the points ``y`` (any shape).

    The law of :math:`\ln(|x|^2/n_{in}) + G + \ln\chi^2_{n_{out}}` with :math:`G \sim N(-\beta/2, \beta)`:
    the convolution of a Gaussian with the log-chi-square density, by the trapezoid rule on
    ``grid_size`` points over :math:`\pm 10` standard deviations.  ``beta = 0`` gives the infinite-width
    prediction (G = 0).
    """
    n_in = check_int("n_in", n_in, minimum=1)
    n_out = check_int("n_out", n_out, minimum=1)
    y = np.asarray(y, dtype=float)
    offset = 0.0 if x_norm_sq is None else float(np.log(x_norm_sq / n_in))
    if beta <= 0:
        return _log_chi2_pdf(y - offset, n_out)
    sd = np.sqrt(beta)
    g = np.linspace(-0.5 * beta - 10 * sd, -0.5 * beta + 10 * sd, grid_size)
    wg = stats.norm.pdf(g, -0.5 * beta, sd)
    flat = y.reshape(-1)
    out = np.empty_like(flat)
    for start in range(0, flat.size, 256):  # bound memory: 256 x grid_size at a time
        yy = flat[start : start + 256, None]
        out[start : start + 256] = np.trapezoid(wg * _log_chi2_pdf(yy - offset - g, n_out), g, axis=1)
    return out.reshape(y.shape)


# --------------------------------------------------------------------------------------------------
# Random streams
# --------------------------------------------------------------------------------------------------
# Why NumPy generators behind a JAX key: on CPU, NumPy's SFC64 ziggurat normals are 3-5x faster than
# jax.random.normal (threefry + erfinv; 18-46 M/s against 75-100 M/s measured here), and NumPy's binomial
# and gamma samplers 20x faster than jax.random's rejection loops.  Network simulation draws d n^2 normals
# per sample, so this decides whether the n = 100, d = 100, 2^15-sample check takes minutes or half an
# hour.  The JAX key still fixes the stream: same key, same result.
def _entropy(key) -> list[int]:
    if isinstance(key, (int, np.integer)):
        return [int(key)]
    dt = getattr(key, "dtype", None)
    if dt is not None and jnp.issubdtype(dt, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return [int(v) for v in np.asarray(key, dtype=np.uint64).ravel()]


_OUTPUT_STREAM = 2**31  # stream of the output chi-square in sample_output_log_norm_exact (no chunk index reaches it)


def _chunk_rng(key, chunk: int) -> np.random.Generator:
    """Independent stream for chunk ``chunk`` of the draws made from ``key``."""
    return np.random.Generator(np.random.SFC64(np.random.SeedSequence(_entropy(key), spawn_key=(chunk,))))


# --------------------------------------------------------------------------------------------------
# Exact sampler (MLP)
# --------------------------------------------------------------------------------------------------
def _log_chi2(rng, dof):
    """ln(chi2_dof) = ln(2 Gamma(dof/2)); -inf where dof = 0."""
    with np.errstate(divide="ignore"):
        return np.log(2.0 * rng.standard_gamma(np.asarray(dof, dtype=float) / 2.0))


#: samples per chunk of the exact sampler (its default ``chunk_size``)
EXACT_CHUNK = 8192
#: numbers per (samples x layers) block of the exact sampler (about 40 bytes each while it runs, 170 MB)
EXACT_BLOCK = 2**22


def exact_work_units(depth: int, num_samples: int, chunk_size: int = EXACT_CHUNK) -> tuple[int, int]:
    """``(chunks, layer blocks per chunk)`` of :func:`sample_g_exact`: its ``progress`` sees their product."""
    n_chunks = -(-num_samples // chunk_size)
    m = min(chunk_size, num_samples)
    per_block = max(1, EXACT_BLOCK // m)
    return n_chunks, max(1, -(-depth // per_block))


def sample_g_exact(key, widths: Sequence[int], num_samples: int, *, chunk_size: int = EXACT_CHUNK,
                   progress: Callable | None = None) -> np.ndarray:
    r"""Draw G exactly for an MLP with hidden widths ``(n_0, ..., n_d)``: shape ``(num_samples,)``.

    :math:`G = \sum_{l<d}\ln(\tfrac{2}{n_l}\chi^2_{B_l}) + \ln(\chi^2_{n_d}/n_d)`, :math:`B_l \sim
    \mathrm{Bin}(n_l, 1/2)`, chi-squares drawn as :math:`2\,\mathrm{Gamma}(k/2)`: 2d + 1 draws per sample
    instead of :math:`\sum_l n_l n_{l-1}` normals for a network.  ``-inf`` marks a zero output (module
    docstring).  Same key and ``chunk_size``, same result.

    Samples are drawn ``chunk_size`` at a time; when ``chunk_size * d`` exceeds :data:`EXACT_BLOCK` the
    layers of a chunk are drawn in blocks, so memory stays at about ``40 * EXACT_BLOCK`` bytes (170 MB)
    plus the output at any depth.  ``progress`` (optional, e.g. a tqdm bar) wraps the iterator over the
    ``(chunk, block)`` work units; :func:`estimate_cost` gives their count and the expected time.
    """
    w = as_widths(widths=widths)
    num_samples = check_int("num_samples", num_samples, minimum=1)
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    relu_w = np.asarray(w[:-1], dtype=np.int64)
    depth = relu_w.size
    n_chunks, n_blocks = exact_work_units(depth, num_samples, chunk_size)
    block = -(-depth // n_blocks) if depth else 0
    units = ((c, j) for c in range(n_chunks) for j in range(n_blocks))
    if progress is not None:
        units = progress(units)
    out = np.empty(num_samples)
    rng = None
    for c, j in units:
        start = c * chunk_size
        m = min(chunk_size, num_samples - start)
        if j == 0:
            rng = _chunk_rng(key, c)
            g = np.zeros(m)
        lw = relu_w[j * block : (j + 1) * block]
        if lw.size:
            b = rng.binomial(lw, 0.5, size=(m, lw.size))
            g += np.sum(_log_chi2(rng, b) + np.log(2.0 / lw), axis=1)
        if j == n_blocks - 1:
            g += _log_chi2(rng, np.full(m, w[-1])) - np.log(w[-1])
            out[start : start + m] = g
    return out


def sample_output_log_norm_exact(key, widths: Sequence[int], num_samples: int, *, n_in: int, n_out: int,
                                 x_norm_sq: float | None = None, chunk_size: int = EXACT_CHUNK,
                                 progress: Callable | None = None):
    r"""Exact draws of :math:`(G, \ln|z_{out}|^2)` for an MLP: two arrays of shape ``(num_samples,)``.

    :math:`\ln|z_{out}|^2 = \ln(|x|^2/n_{in}) + G + \ln\chi^2_{n_{out}}` (the notes, eq. 4); ``x_norm_sq``
    defaults to ``n_in``; ``progress`` as in :func:`sample_g_exact`.
    """
    n_in = check_int("n_in", n_in, minimum=1)
    n_out = check_int("n_out", n_out, minimum=1)
    g = sample_g_exact(key, widths, num_samples, chunk_size=chunk_size, progress=progress)
    chi = _chunk_rng(key, _OUTPUT_STREAM).chisquare(float(n_out), size=num_samples)
    offset = 0.0 if x_norm_sq is None else float(np.log(x_norm_sq / n_in))
    return g, offset + g + np.log(chi)


# --------------------------------------------------------------------------------------------------
# Network simulation (brute force)
# --------------------------------------------------------------------------------------------------
class NetworkSamples(NamedTuple):
    """Draws from simulated finite networks at one input ``x``."""

    g: np.ndarray  # (S,) G = ln(|z^d|^2/n_d) - ln(|x|^2/n_in); -inf for a zero output
    log_out_sq: np.ndarray  # (S,) ln |z_out|^2
    log_jac_sq: np.ndarray | None  # (S,) ln |d z_out / d x_i|^2 when a Jacobian column was asked for


def _forward_chunk(rng, x, m, widths, n_out, alpha, resnet, dtype, tangent_dir):
    """``m`` networks drawn from ``rng`` evaluated at ``x``: ``(z_out, z^d, t_out)``, batch first.

    ``t`` is the forward-mode tangent along ``tangent_dir`` (``None``: not computed): the same recursion
    with the ReLU replaced by its derivative mask (the network is piecewise linear).
    """
    n_in = x.shape[0]
    w0 = rng.standard_normal((m, widths[0], n_in), dtype=dtype)
    inv = dtype(1.0 / np.sqrt(n_in))
    z = (w0 @ x.astype(dtype)) * inv  # (m, n_0)
    t = None if tangent_dir is None else (w0 @ tangent_dir.astype(dtype)) * inv
    lam = None if alpha is None else dtype(np.sqrt(1.0 - alpha * alpha))
    for l in range(1, len(widths)):
        fan_in, fan_out = widths[l - 1], widths[l]
        w = rng.standard_normal((m, fan_out, fan_in), dtype=dtype)
        scale = dtype(np.sqrt(2.0 / fan_in))
        if resnet == "balanced":
            sign = (2 * rng.integers(0, 2, size=(m, fan_in), dtype=np.int8) - 1).astype(dtype)
            pre = sign * z
        else:
            sign, pre = None, z
        on = pre > 0
        branch = scale * np.matmul(w, np.where(on, pre, 0)[..., None])[..., 0]
        if t is not None:
            tin = np.where(on, t, 0) if sign is None else np.where(on, sign * t, 0)
            tb = scale * np.matmul(w, tin[..., None])[..., 0]
        if alpha is None:
            z = branch
            t = None if t is None else tb
        else:
            z = alpha * z + lam * branch
            t = None if t is None else alpha * t + lam * tb
    w_out = rng.standard_normal((m, n_out, widths[-1]), dtype=dtype)
    inv_d = dtype(1.0 / np.sqrt(widths[-1]))
    z_out = np.matmul(w_out, z[..., None])[..., 0] * inv_d
    t_out = None if t is None else np.matmul(w_out, t[..., None])[..., 0] * inv_d
    return z_out, z, t_out


def _check_network_args(widths, n_in, n_out, x, alpha, resnet, num_samples, chunk_size):
    widths = as_widths(widths=widths)
    n_in = check_int("n_in", n_in, minimum=1)
    n_out = check_int("n_out", n_out, minimum=1)
    num_samples = check_int("num_samples", num_samples, minimum=1)
    chunk_size = check_int("chunk_size", chunk_size, minimum=1)
    resnet = check_choice("resnet", resnet, RESNET_VARIANTS)
    if alpha is not None:
        alpha = check_in_interval("alpha", alpha, 0.0, 1.0)
        if len(set(widths)) != 1:
            raise InputError(f"a ResNet needs equal hidden widths (skip connections), got widths {widths}")
    if x is None:
        x = np.ones(n_in)
    x = np.asarray(x, dtype=float)
    if x.shape != (n_in,) or not np.all(np.isfinite(x)) or not np.any(x):
        raise InputError(f"x must be a finite, nonzero vector of shape ({n_in},), got shape {x.shape}")
    return widths, n_in, n_out, x, alpha, resnet, num_samples, chunk_size


def _log_sq_norm(v):
    with np.errstate(divide="ignore"):
        return np.log(np.sum(np.square(v, dtype=np.float64), axis=-1))


def simulate_network(key, widths: Sequence[int], num_samples: int, *, n_in: int, n_out: int, x=None,
                     alpha: float | None = None, resnet: str = "standard", jacobian_column: int | None = None,
                     chunk_size: int = 256, dtype=np.float32, progress: Callable | None = None) -> NetworkSamples:
    r"""Sample G and :math:`\ln|z_{out}|^2` by drawing ``num_samples`` whole networks (brute force).

    Parameters
    ----------
    key : JAX PRNG key (or int) fixing the stream; chunk c draws from its own spawned stream, so the
        result is fixed by ``key`` and ``chunk_size``.
    widths : hidden widths ``(n_0, ..., n_d)`` (module docstring).
    n_in, n_out : input and output dimensions; ``x`` is the input (default ``ones(n_in)``).
    alpha : ``None`` for the MLP; in [0, 1] for a ResNet (equal widths), :math:`\lambda = \sqrt{1-\alpha^2}`.
    resnet : ``"standard"`` (the notes' ReLU ResNet) or ``"balanced"`` (independent random sign per
        neuron and layer before the ReLU; the network for which :func:`beta_resnet` holds).  With
        ``alpha=None``, ``"balanced"`` applies the random signs to the MLP (same law as the MLP).
    jacobian_column : ``i`` to also return :math:`\ln|\partial z_{out}/\partial x_i|^2` (forward-mode,
        exact for the piecewise-linear network), or ``None``.
    chunk_size : networks per batch; memory is about ``chunk_size * max(n_l n_{l-1})`` numbers.
    dtype : weights and activations.  float32 (default) is enough: the rounding error of G over d layers
        is about ``d * 1e-7``, far below the Monte Carlo error; norms are summed in float64.
    progress : optional wrapper of the chunk iterator (e.g. a tqdm bar).

    Returns :class:`NetworkSamples` of float64 arrays of shape ``(num_samples,)``.
    """
    widths, n_in, n_out, x, alpha, resnet, num_samples, chunk_size = _check_network_args(
        widths, n_in, n_out, x, alpha, resnet, num_samples, chunk_size)
    dtype = np.dtype(dtype).type
    tangent = None
    if jacobian_column is not None:
        jacobian_column = check_int("jacobian_column", jacobian_column, minimum=0, maximum=n_in - 1)
        tangent = np.zeros(n_in)
        tangent[jacobian_column] = 1.0
    log_x = float(np.log(np.sum(x * x) / n_in))
    starts = range(0, num_samples, chunk_size)
    if progress is not None:
        starts = progress(starts)
    gs, outs, jacs = [], [], []
    for start in starts:
        rng = _chunk_rng(key, start // chunk_size)
        m = min(chunk_size, num_samples - start)
        z_out, z_d, t_out = _forward_chunk(rng, x, m, widths, n_out, alpha, resnet, dtype, tangent)
        gs.append(_log_sq_norm(z_d) - np.log(widths[-1]) - log_x)
        outs.append(_log_sq_norm(z_out))
        if t_out is not None:
            jacs.append(_log_sq_norm(t_out))
    return NetworkSamples(np.concatenate(gs), np.concatenate(outs), np.concatenate(jacs) if jacs else None)


# --------------------------------------------------------------------------------------------------
# Cost model
# --------------------------------------------------------------------------------------------------
#: Rates behind :func:`estimate_cost`, measured on 2 CPU cores (NumPy SFC64 generators; 1.5-2x slower when
#: the cores are shared): layers per second of the exact sampler (a binomial and a gamma draw each, per
#: sample), and weights per second of network simulation (a float32 normal draw and its multiply-add).
EXACT_LAYERS_PER_SECOND = 5e6
NETWORK_WEIGHTS_PER_SECOND = 5e7


def estimate_cost(method: str, num_samples: int, *, width: int | None = None, depth: int | None = None,
                  widths: Sequence[int] | None = None, n_in: int = 10, n_out: int = 10, chunk_size: int = 256,
                  exact_chunk_size: int = EXACT_CHUNK) -> dict:
    r"""Expected time and peak memory of drawing ``num_samples`` values of G with ``method``, before any work.

    Give ``width`` and ``depth`` (equal widths; nothing of size ``depth`` is built, so absurd depths are
    cheap to price) or ``widths``.  Returns ``{"seconds", "bytes", "draws"}``:

    * ``"exact"``: :math:`S\,(d+1)` layer draws at :data:`EXACT_LAYERS_PER_SECOND`; memory: the layer
      blocks of :func:`sample_g_exact` (40 bytes a number), the widths and their float copies
      (:math:`32\,(d+1)` bytes) and the three output arrays (:math:`24 S`).
    * ``"network"``: :math:`S\,(n_0 n_{in} + \sum_l n_l n_{l-1} + n_{out} n_d)` weights at
      :data:`NETWORK_WEIGHTS_PER_SECOND`; memory: two ``chunk_size`` batches of the largest weight matrix in
      float32, the widths and the outputs.
    """
    method = check_choice("method", method, ("exact", "network"))
    num_samples = check_int("num_samples", num_samples, minimum=1)
    n_in = check_int("n_in", n_in, minimum=1)
    n_out = check_int("n_out", n_out, minimum=1)
    if widths is not None:
        w = np.asarray(as_widths(widths=widths, depth=depth), dtype=float)
        d, first, last = w.size - 1, w[0], w[-1]
        inner = float(np.sum(w[1:] * w[:-1]))
        largest = float(max(np.max(w[1:] * w[:-1]) if d else 0.0, first * n_in, n_out * last))
    else:
        if width is None or depth is None:
            raise InputError("give width and depth, or widths")
        n = float(check_int("width", width, minimum=1))
        d = check_int("depth", depth, minimum=0)
        first = last = n
        inner, largest = d * n * n, max(n * n if d else 0.0, n * n_in, n_out * n)
    s = float(num_samples)
    base_bytes = 32.0 * (d + 1) + 24.0 * s
    if method == "exact":
        m = min(exact_chunk_size, num_samples)
        block = min(float(d), max(1.0, EXACT_BLOCK // m)) * m
        draws = s * (d + 1)
        return {"seconds": draws / EXACT_LAYERS_PER_SECOND, "bytes": base_bytes + 40.0 * block, "draws": draws}
    weights = first * n_in + inner + n_out * last
    draws = s * weights
    chunk = float(min(chunk_size, num_samples))
    return {"seconds": draws / NETWORK_WEIGHTS_PER_SECOND, "bytes": base_bytes + 2 * 4.0 * chunk * largest,
            "draws": draws}


# --------------------------------------------------------------------------------------------------
# Summaries and the figure
# --------------------------------------------------------------------------------------------------
class GSummary(NamedTuple):
    """Sample moments of G with their Monte Carlo standard errors, and KS against the log-Gaussian."""

    mean: float
    var: float
    se_mean: float  # sqrt(var / S)
    se_var: float  # sqrt((m4 - var^2 (S-3)/(S-1)) / S), m4 the sample 4th central moment
    ks_stat: float
    ks_pvalue: float
    zero_outputs: int  # samples with G = -inf (output exactly 0), left out of the statistics


def summarize_g(g, beta: float) -> GSummary:
    r"""Moments of the finite draws of G, their standard errors, and the KS test against N(-beta/2, beta).

    The standard error of the sample variance uses the 4th central moment:
    :math:`\mathrm{Var}(s^2) \approx (m_4 - s^4 (S-3)/(S-1))/S`.
    """
    g = np.asarray(g, dtype=float)
    finite = g[np.isfinite(g)]
    s = finite.size
    if s < 2:
        raise InputError(f"need at least 2 finite samples of G, got {s}")
    mean = float(finite.mean())
    var = float(finite.var(ddof=1))
    m4 = float(np.mean((finite - mean) ** 4))
    se_var = float(np.sqrt(max(m4 - var * var * (s - 3) / (s - 1), 0.0) / s))
    if beta > 0:
        ks = stats.kstest(finite, stats.norm(loc=-0.5 * beta, scale=np.sqrt(beta)).cdf)
        ks_stat, ks_p = float(ks.statistic), float(ks.pvalue)
    else:
        ks_stat, ks_p = float("nan"), float("nan")
    return GSummary(mean, var, float(np.sqrt(var / s)), se_var, ks_stat, ks_p, int(g.size - s))


def plot_log_norm_densities(samples: dict, *, width: int, n_in: int, n_out: int, ax=None, bins: int = 80,
                            label: str = "simulation"):
    r"""The figure of the notes: histograms of :math:`\ln|z_{out}|^2` per depth with the two predictions.

    ``samples`` maps depth d to draws of :math:`\ln|z_{out}|^2` (input ``x = 1``, so the offset is 0).
    Red: the log-Gaussian prediction (:math:`\beta = 2/n + 5d/n`); blue: the infinite-width prediction
    (:math:`G = 0`).  Returns the matplotlib axes (one per depth).
    """
    import matplotlib.pyplot as plt

    depths = sorted(samples)
    if ax is None:
        _, ax = plt.subplots(1, len(depths), figsize=(4.2 * len(depths), 3.4), squeeze=False)
        ax = ax[0]
    for a, d in zip(ax, depths):
        y = np.asarray(samples[d], dtype=float)
        y = y[np.isfinite(y)]
        lo, hi = np.quantile(y, [0.0005, 0.9995])
        beta = 2.0 / width + 5.0 * d / width
        lo = min(lo, output_log_norm_moments(0.0, n_in, n_out)[0] - 4 * np.sqrt(
            output_log_norm_moments(0.0, n_in, n_out)[1]))
        grid = np.linspace(lo, hi, 400)
        a.hist(y, bins=bins, range=(lo, hi), density=True, color="0.75", label=f"{label} ({y.size})")
        a.plot(grid, output_log_norm_density(grid, beta, n_in, n_out), "r-", lw=2,
               label=fr"log-Gaussian, $\beta$={beta:.2f}")
        a.plot(grid, output_log_norm_density(grid, 0.0, n_in, n_out), "b--", lw=2, label="infinite width")
        a.set_title(f"n={width}, d={d}")
        a.set_xlabel(r"$\ln |z_{out}|^2$")
        a.legend(fontsize=7)
    ax[0].set_ylabel("density")
    return ax
