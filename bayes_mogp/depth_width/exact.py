"""The exact sampler of G for MLPs: a product of independent (scaled) chi-square variables.

Part of :mod:`bayes_mogp.depth_width` (see its docstring for the mathematics)."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..validation import check_int
from .streams import _OUTPUT_STREAM, _chunk_rng
from .theory import as_widths


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
