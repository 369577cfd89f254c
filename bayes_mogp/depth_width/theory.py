"""The theory of the log-Gaussian law: beta, its moments (first and second order, exact), the law of the output norm.

Part of :mod:`bayes_mogp.depth_width` (see its docstring for the mathematics)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import special, stats

from ..errors import InputError
from ..validation import check_in_interval, check_int

RESNET_VARIANTS = ("standard", "balanced")
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
