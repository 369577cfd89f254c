r"""The memory model of :func:`~.predict.exact_gp_predict`: bytes of its largest arrays, and the budget.

:func:`memory_estimate` counts the arrays each solver holds at its peak; :func:`memory_limit_bytes` is the
budget the automatic choices compare it with (the dense-or-CG choice of :func:`~.solvers.choose_solver`,
the tile storage of the CG solver): a given number of GiB, or 75% of the physical memory.
"""

from __future__ import annotations

from ..memory import physical_memory
from ..validation import check_positive
from .operator import evaluation_entries, make_layout

__all__ = ["GIB", "memory_estimate", "memory_limit_bytes"]

GIB = 2.0**30
BLOCK_SIZE = 512  # tile edge: float32 tiles of 1 MB; measured no slower than 256-1024 per product on 2 CPU cores


def memory_limit_bytes(memory_limit_gb: float | None) -> float:
    """``memory_limit_gb`` in bytes; ``None``: 75% of the physical memory (16 GiB where it is unknown)."""
    if memory_limit_gb is None:
        phys = physical_memory()
        return 0.75 * phys if phys else 16 * GIB
    return check_positive("memory_limit_gb", memory_limit_gb) * GIB


def memory_estimate(n: int, m: int, d: int, num_outputs: int, *, solver: str, storage: str = "float32",
                    precond_rank: int = 3000, block_size: int = BLOCK_SIZE, num_devices: int = 1,
                    var_points: int = 0, var_batch: int = 128) -> dict:
    """Estimated bytes of the largest arrays of :func:`~.predict.exact_gp_predict` (host and devices together).

    ``solver`` ``"cholesky"``: K, K + sigma^2 I, its symmetrised copy and factor (4 n^2 float64) and the
    test-train kernel with its triangular solve (2 m n).  ``"cg"``: the tile storage (float32, about
    n^2 / 2 entries; none when ``storage="recompute"``), the pivoted-Cholesky factor (n x r float64)
    and its work space while it is built (about n x (1.1 r + 256), freed before the tiles are
    allocated, so only the larger of the two counts), inputs, CG vectors, the temporaries of one kernel
    evaluation (12 arrays of the largest group of entries that :mod:`.operator` evaluates at once)
    and the variance right-hand sides.  Returns a dict of components (bytes) and ``"total"``.
    """
    f8 = 8
    if solver == "cholesky":
        out = {"kernel_and_factor": 4 * n * n * f8, "test_train": 2 * m * n * f8, "inputs": (n + m) * d * f8}
        out["total"] = sum(out.values())
        return out
    lay = make_layout(n, num_devices, block_size)
    npad, b = lay.padded, lay.block
    r = min(precond_rank, n)
    out = {
        "tiles": lay.storage_bytes() if storage == "float32" else 0,
        "preconditioner": npad * r * f8 + 2 * r * r * f8,
        "preconditioner_workspace": npad * (11 * r // 10 + 2 * min(128, r)) * f8,
        "inputs": (npad + m) * d * f8 * 2,
        "vectors": 10 * npad * num_outputs * f8,
        "block_temporaries": 12 * evaluation_entries(lay) * f8 * num_devices,
        "variance": 6 * npad * min(var_points, var_batch) * f8,
    }
    out["total"] = sum(v for k, v in out.items() if k not in ("tiles", "preconditioner_workspace")) + max(
        out["tiles"], out["preconditioner_workspace"])
    return out
