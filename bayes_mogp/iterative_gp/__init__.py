r"""Exact GP regression with NNGP/NTK kernels beyond dense Cholesky: sharded preconditioned CG.

The dense solver (:func:`bayes_mogp.gp.gp_posterior`) holds :math:`K` (n, n) in float64 and
factorises it: 0.8 GB and seconds at n = 10^4, 28.8 GB at n = 60 000.  This package solves the same
problem, :math:`A\alpha = Y` with :math:`A = K + \sigma^2 I` and C right-hand sides (one per output),
without ever holding :math:`K` in float64, and predicts :math:`\mu_* = K(X_*, X)\,\alpha`.
:func:`exact_gp_predict` picks the dense solver below a size threshold and this one above it::

    res = exact_gp_predict(x_train, y_train, x_test, KernelSpec("nngp", depth=3), noise_var,
                           key=jax.random.key(0), solver=Auto(cg=CG(tol=1e-5)))

The solvers are frozen, validated records (:mod:`.solvers`): :class:`Cholesky`, :class:`CG` (its options)
and :class:`Auto` (Cholesky up to ``dense_max_n`` points and within the memory budget, else its ``cg``);
:func:`choose_solver` is the one rule that picks one.  Modules, one concept each: :mod:`.predict` (the
entry point), :mod:`.solvers`, :mod:`.memory_model` (:func:`memory_estimate`, the budget), :mod:`.dense`
(the Cholesky path), :mod:`.iterative` (the CG path), :mod:`.variance` (Nystrom and exact variances),
:mod:`.operator` (the sharded kernel operator), :mod:`.preconditioner`, :mod:`.pcg`.

**Preconditioned conjugate gradients** (:mod:`.pcg`).  Each output column runs its own CG recursion,
all columns sharing one product with :math:`A` per iteration (batched CG, Gardner et al. 2018).  A
column stops when its relative residual :math:`\|y_j - A\alpha_j\|/\|y_j\|` drops below ``tol``; the
residual is recomputed explicitly at the end and reported.  CG needs about
:math:`\sqrt{\kappa}` iterations per digit, :math:`\kappa` the condition number of the preconditioned
:math:`A`.

**Preconditioner** (:mod:`.preconditioner`).  A rank-r pivoted Cholesky factor :math:`L` (n, r),
:math:`K \approx LL^\top` (Harbrecht et al. 2012), its pivots sampled in proportion to the residual
diagonal (randomly pivoted Cholesky, Chen et al. 2022, in blocks with rejection; explicit PRNG key),
its columns computed from the inputs, and :math:`M = LL^\top + \sigma^2 I`, applied through the
Woodbury identity

.. math::

    M^{-1} v = \sigma^{-2}\big(v - L(\sigma^2 I_r + L^\top L)^{-1} L^\top v\big),

one r x r float64 Cholesky factor (Gardner et al. 2018, section 4).  The spectrum of :math:`M^{-1}A`
lies in :math:`[1, 1 + \lambda_{\max}(K - LL^\top)/\sigma^2]`: the rank trades memory (n r float64)
and set-up time for iterations.  This is the recipe with which Wang et al. (2019) ran exact GPs on a
million points.

**Float32 storage, float64 accumulation** (:mod:`.operator`).  The tiles of :math:`K` are computed in
float64 with the closed forms of :mod:`bayes_mogp.kernels.closed_form` and, when
:func:`memory_estimate` fits the memory limit, stored once in float32: half of the tiles (row block
:math:`I` keeps :math:`K_{I,(I+k) \bmod n_b}`, :math:`0 \le k \le n_b/2`; symmetry gives the rest), about
:math:`n^2/2` entries, 7.4 GB at n = 60 000, after subtracting a constant :math:`c` (the median entry),
which makes the rounding error about five times smaller for deep ReLU kernels.  Every tile is converted to float64 before it multiplies a vector; vectors, the
sums inside and across tiles and across devices, and all CG scalars are float64.  The operator CG
then solves is :math:`\tilde K + \sigma^2 I` with :math:`|\tilde K_{ij} - K_{ij}| \le 2^{-24}|K_{ij} - c|`;
on Fashion-MNIST, solving the rounded system exactly moved the predictive means by 7.7e-6 at
n = 10^4 (3.9e-5 without the centring).  ``refine=True`` recomputes
the residual with the float64 kernel (one pass that recomputes every tile) and, while it misses
``tol``, solves for a correction with the stored operator (mixed-precision iterative refinement), so
that ``tol`` then holds for the exact kernel.  Without enough memory the tiles are recomputed in
float64 at every product instead (``storage="recompute"``).

**Variance.**  ``variance="exact"``: :math:`k_{**} - k_*^\top A^{-1} k_*`, with :math:`A^{-1}k_*` from
further PCG solves whose right-hand sides are the columns :math:`K(X, x_*)` (chosen test points,
batches of 128); each test point costs about as much as one output column.  ``variance="nystrom"``:
the deterministic-training-conditional (DTC) variance of the preconditioner's Nystrom factor,
:math:`k_{**} - \ell_*^\top\ell_* + \sigma^2 \ell_*^\top(\sigma^2 I + L^\top L)^{-1}\ell_*` with
:math:`\ell_* = L_{PP}^{-1}k(x_P, x_*)` (pivots P), O(r^2) per test point.  It treats the part of
:math:`k` outside the pivots' span as unexplained by the data, so it over-estimates the exact
variance for most test points, but it is not a bound (Fashion-MNIST, n = 4000, rank 500: ratio to
the exact variance 2.4 at the median, 1.4 at the 5% quantile, 0.48 at the minimum); the benchmark
and ``var_check_points`` measure it.

**Sharding.**  All large arrays are split by rows of :math:`K` over a one-axis
:class:`jax.sharding.Mesh` (axis ``"rows"``) of ``jax.devices()``: the float32 tiles (row block
:math:`I` owns :math:`K_{I,(I+k) \bmod n_b}`, :math:`0 \le k \le n_b/2`, the same number of tiles on
every device), the pivoted-Cholesky factor and the CG vectors (``NamedSharding(mesh, P("rows"))``).
A product :math:`KV` is a ``shard_map``: each device multiplies its tiles (twice each, by symmetry)
against the all-gathered :math:`V` (n x C float64: 4.8 MB at n = 60 000) and one ``psum_scatter``
returns the partial sums to the rows' owners; kernel columns for the preconditioner and test-train
products are computed where their rows live and reduced with ``psum``.  Only vectors and r x r or
m x C matrices cross devices.

**Several hosts** (``jax.distributed``; written for, not run in CI).  Start one process per host with
``jax.distributed.initialize(coordinator_address, num_processes, process_id)`` before any other JAX
call; ``jax.devices()`` then lists every host's devices and the mesh spans them all.  Every process
must call :func:`exact_gp_predict` with the same arguments (the inputs are small: 60 000 x 784
float64 is 0.4 GB): global arrays are assembled with ``jax.make_array_from_callback`` and
``make_array_from_single_device_arrays``, so each process builds only the tiles of its own devices
and never holds another host's; the ``psum_scatter``/``psum`` collectives cross hosts over the
interconnect (C vectors of length n per CG iteration); every value read on the host (residual norms,
r x r matrices, the m x C mean) is first replicated to all devices, so each process can read it and
all processes take the same Python-side decisions (stopping, pivots) in lockstep.  Memory then
scales down with the number of hosts: at n = 10^6 the float32 tiles are 2 TB, 16 GB per device on
128 devices.  Untested there: timing and the behaviour of ``bayes_mogp.memory.PeakRSS`` (which measures the calling
process only).

References: J. Gardner, G. Pleiss, D. Bindel, K. Weinberger, A. G. Wilson, *GPyTorch: Blackbox
matrix-matrix Gaussian process inference with GPU acceleration* (NeurIPS 2018);
K. A. Wang, G. Pleiss, J. Gardner, S. Tyree, K. Weinberger, A. G. Wilson, *Exact Gaussian processes on
a million data points* (NeurIPS 2019); H. Harbrecht, M. Peters, R. Schneider, *On the low-rank
approximation by the pivoted Cholesky decomposition* (Appl. Numer. Math. 2012); Y. Chen, E. Epperly,
J. Tropp, R. Webber, *Randomly pivoted Cholesky: practical approximation of a kernel matrix with few
entry evaluations* (arXiv:2207.06503, 2022); E. Epperly, J. Tropp, R. Webber, *Embrace rejection:
kernel matrix approximation by accelerated randomly pivoted Cholesky* (arXiv:2410.03969, 2024).
"""

from .memory_model import memory_estimate
from .operator import KernelOperator, KernelSpec, TileLayout, build_operator, make_mesh, store_tiles
from .pcg import PCGResult, pcg
from .preconditioner import PivotedCholesky, WoodburyPreconditioner, pivoted_cholesky, woodbury_preconditioner
from .predict import ExactGPResult, Progress, exact_gp_predict
from .solvers import CG, DENSE_MAX_N, SOLVERS, Auto, Cholesky, as_solver, choose_solver
from .variance import VARIANCES

__all__ = [
    "SOLVERS",
    "VARIANCES",
    "DENSE_MAX_N",
    "Auto",
    "CG",
    "Cholesky",
    "ExactGPResult",
    "KernelOperator",
    "KernelSpec",
    "PCGResult",
    "PivotedCholesky",
    "Progress",
    "TileLayout",
    "WoodburyPreconditioner",
    "as_solver",
    "build_operator",
    "choose_solver",
    "exact_gp_predict",
    "make_mesh",
    "memory_estimate",
    "pcg",
    "pivoted_cholesky",
    "store_tiles",
    "woodbury_preconditioner",
]
