"""The cost model of the samplers: time and memory estimates, checked before long work.

Part of :mod:`bayes_mogp.depth_width` (see its docstring for the mathematics)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import InputError
from ..validation import check_choice, check_int
from .exact import EXACT_BLOCK, EXACT_CHUNK
from .theory import as_widths


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
