"""Summaries of sampled G against the theory, and the figure of the output log-norm densities.

Part of :mod:`bayes_mogp.depth_width` (see its docstring for the mathematics)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats

from ..errors import InputError
from .theory import output_log_norm_density, output_log_norm_moments


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
