"""Brute-force network simulation: whole MLPs and ResNets, their outputs and Jacobian columns.

Part of :mod:`bayes_mogp.depth_width` (see its docstring for the mathematics)."""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import numpy as np

from ..errors import InputError
from ..validation import check_choice, check_in_interval, check_int
from .streams import _chunk_rng
from .theory import RESNET_VARIANTS, as_widths


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
