r"""The solvers of :func:`~.predict.exact_gp_predict` as small frozen records, and the one rule that picks one.

* :class:`Cholesky`: dense float64 kernel matrices, factorised in float32 with float64 refinement (or in
  float64 with adaptive jitter);
* :class:`CG`: preconditioned conjugate gradients on the sharded, float32-stored kernel operator, with its
  options (tolerance, iterations, preconditioner rank, tile storage, refinement, tile size, devices,
  memory budget);
* :class:`Auto`: :class:`Cholesky` when ``n <= dense_max_n`` and the dense memory estimate fits
  ``memory_limit_gb``, else its ``cg``.

Every field is checked when the record is built (an :class:`~bayes_mogp.errors.InputError` or
:class:`~bayes_mogp.errors.InputTypeError` naming it and its range), so a solver that exists is a valid one.
:func:`as_solver` turns the names ``"auto"``, ``"cholesky"`` and ``"cg"`` (the command line,
``bayes_mogp.nngp.fit(..., solver="cg")``) into these records; :func:`choose_solver` resolves a solver for
a problem size to a :class:`Cholesky` or a :class:`CG`, with the reason.  It is the only place where the
dense-or-CG choice is made: :func:`~.predict.exact_gp_predict`, :func:`bayes_mogp.nngp.fit` and
``bayes-mogp baseline`` all call it.

>>> from bayes_mogp.iterative_gp import CG, Auto, choose_solver
>>> solver, reason = choose_solver(Auto(dense_max_n=100, cg=CG(tol=1e-8)), n=400, m=24, d=16, c=3)
>>> solver.tol, reason
(1e-08, 'n = 400 > dense_max_n = 100')

The CG solver samples the pivots of its preconditioner with a JAX PRNG key; :func:`check_key` is the check
of that key (typed keys, or raw ``uint32`` keys such as ``jax.random.PRNGKey(0)``, which it wraps).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar, Union

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputTypeError
from ..validation import check_bool, check_choice, check_in_interval, check_int, check_positive
from .memory_model import BLOCK_SIZE, GIB, memory_estimate, memory_limit_bytes

__all__ = ["SOLVERS", "STORAGES", "DENSE_MAX_N", "PRECISIONS", "MIXED_MAX_COLUMNS", "Cholesky", "CG", "Auto",
           "as_solver", "choose_solver", "solver_from_dict", "check_key"]

SOLVERS = ("auto", "cholesky", "cg")
STORAGES = ("auto", "float32", "recompute")
DENSE_MAX_N = 10_000  # the largest n for which Auto() picks the dense solver
PRECISIONS = ("mixed", "float64")  # of the dense Cholesky solver
#: the most right-hand sides (outputs + exact-variance points) the mixed-precision Cholesky refines; more: float64
MIXED_MAX_COLUMNS = 256


def _set(obj, name, value):
    object.__setattr__(obj, name, value)  # frozen: store the validated (normalised) value


def _optional_limit(obj):
    if obj.memory_limit_gb is not None:
        _set(obj, "memory_limit_gb", check_positive("memory_limit_gb", obj.memory_limit_gb))


class _Solver:
    """What the three records share: a ``name`` and a JSON-able :meth:`to_dict`."""

    name: ClassVar[str]

    def to_dict(self) -> dict:
        """``{"name": ..., field: value, ...}``, JSON-able (devices by their ids; :func:`solver_from_dict`)."""
        out = {"name": self.name}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, _Solver):
                value = value.to_dict()
            elif f.name == "devices" and value is not None:
                value = [int(dev.id) for dev in value]
            out[f.name] = value
        return out


@dataclass(frozen=True)
class Cholesky(_Solver):
    """Dense Cholesky of :math:`K + \\sigma^2 I`, with float64 results either way.

    ``precision``: ``"mixed"`` (default) factorises in float32 and refines the solution in float64 to a
    float64 solve's accuracy (:func:`bayes_mogp.numerics.mixed_precision_cholesky_solve`, LAPACK's ``dsposv``
    algorithm: the factorisation about twice as fast, the whole solve about 1.4x at n = 10^4); it falls back to
    ``"float64"`` when the float32 factor fails or refinement does not converge, and when more than
    :data:`MIXED_MAX_COLUMNS` right-hand sides (outputs and exact-variance test points) would each need
    refining.  ``"float64"``: LAPACK's ``dpotrf`` with adaptive
    jitter (:func:`bayes_mogp.numerics.lapack_cholesky_with_jitter`).  The kernel matrices are float64 in both:
    4 n^2 float64 numbers (0.8 GB at n = 10^4), the exact posterior variances at no extra cost."""

    name: ClassVar[str] = "cholesky"
    precision: str = "mixed"

    def __post_init__(self):
        check_choice("precision", self.precision, PRECISIONS)


@dataclass(frozen=True)
class CG(_Solver):
    r"""Preconditioned conjugate gradients on the sharded kernel operator (the package docstring has the maths).

    ``tol`` in [1e-12, 1): stop when every output's relative residual
    :math:`\|y_j - (K + \sigma^2 I)\alpha_j\| / \|y_j\|` is below it (recomputed at the end and reported);
    ``max_iter`` >= 1; ``precond_rank`` the pivoted-Cholesky rank (None:
    ``min(n, max(100, min(3000, n // 8)))``); ``storage`` ``"float32"`` (tiles of K stored once),
    ``"recompute"`` (tiles recomputed in float64 at every product: no storage, much slower) or ``"auto"``
    (float32 when :func:`~.memory_model.memory_estimate` fits ``memory_limit_gb``); ``refine`` (float32
    storage only): recompute the residual with the float64 kernel (one extra pass over K) and, while it
    misses ``tol``, solve for a correction with the stored operator (mixed-precision iterative refinement, at
    most 2 rounds); ``block_size`` >= 8 the tile edge (and the test-block size of the predictions);
    ``devices`` the devices the rows of K are sharded over (None: ``jax.devices()``); ``memory_limit_gb`` the
    budget of ``storage="auto"`` (None: 75% of the physical memory; it is the process's resident memory: on
    accelerators compare it with the sum of the devices' memory).
    """

    name: ClassVar[str] = "cg"
    tol: float = 1e-5
    max_iter: int = 1000
    precond_rank: int | None = None
    storage: str = "auto"
    refine: bool = False
    block_size: int = BLOCK_SIZE
    devices: tuple | None = None
    memory_limit_gb: float | None = None

    def __post_init__(self):
        _set(self, "tol", check_in_interval("tol", self.tol, 1e-12, 1.0, high_open=True))
        _set(self, "max_iter", check_int("max_iter", self.max_iter, minimum=1))
        if self.precond_rank is not None:
            _set(self, "precond_rank", check_int("precond_rank", self.precond_rank, minimum=1))
        check_choice("storage", self.storage, STORAGES)
        _set(self, "refine", check_bool("refine", self.refine))
        _set(self, "block_size", check_int("block_size", self.block_size, minimum=8))
        if self.devices is not None:
            if isinstance(self.devices, (str, bytes)) or not hasattr(self.devices, "__iter__"):
                raise InputTypeError(f"devices must be None or a sequence of JAX devices, got {self.devices!r}")
            devices = tuple(self.devices)
            if not devices or not all(isinstance(dev, jax.Device) for dev in devices):
                raise InputTypeError(f"devices must be None or a non-empty sequence of JAX devices "
                                     f"(jax.devices()), got {self.devices!r}")
            _set(self, "devices", devices)
        _optional_limit(self)

    def rank_for(self, n: int) -> int:
        """The preconditioner rank used for n training points (``precond_rank`` or its default, at most n)."""
        rank = min(n, max(100, min(3000, n // 8))) if self.precond_rank is None else self.precond_rank
        return min(rank, n)


@dataclass(frozen=True)
class Auto(_Solver):
    """:class:`Cholesky` when ``n <= dense_max_n`` (>= 0) and the dense memory estimate fits ``memory_limit_gb``
    (None: 75% of the physical memory), else ``cg`` (a :class:`CG`; its own ``memory_limit_gb`` is the budget
    of its tile storage)."""

    name: ClassVar[str] = "auto"
    dense_max_n: int = DENSE_MAX_N
    memory_limit_gb: float | None = None
    cg: CG = field(default_factory=CG)

    def __post_init__(self):
        _set(self, "dense_max_n", check_int("dense_max_n", self.dense_max_n, minimum=0))
        _optional_limit(self)
        if not isinstance(self.cg, CG):
            raise InputTypeError(f"cg must be a CG solver (bayes_mogp.iterative_gp.CG(...)), "
                                 f"got {type(self.cg).__name__}")


Solver = Union[Auto, Cholesky, CG]
_BY_NAME = {"auto": Auto, "cholesky": Cholesky, "cg": CG}


def as_solver(solver, *, name: str = "solver") -> Solver:
    """``solver`` as a record: the names ``"auto"``, ``"cholesky"``, ``"cg"`` become ``Auto()``, ``Cholesky()``,
    ``CG()``; a record is returned as it is; anything else is refused naming ``name``."""
    if isinstance(solver, (Auto, Cholesky, CG)):
        return solver
    if isinstance(solver, str):
        return _BY_NAME[check_choice(name, solver, SOLVERS)]()
    raise InputTypeError(f"{name} must be one of {', '.join(SOLVERS)} or a solver (Auto(...), Cholesky(), "
                         f"CG(...)), got {type(solver).__name__}")


def choose_solver(solver, n: int, m: int, d: int, c: int) -> tuple[Cholesky | CG, str]:
    """The solver that runs for n training points, m test points, d inputs and c outputs, and why.

    ``solver``: a record or a name (:func:`as_solver`).  :class:`Cholesky` and :class:`CG` are returned as
    they are ("requested"); :class:`Auto` resolves to :class:`Cholesky` when ``n <= dense_max_n`` and the
    dense :func:`~.memory_model.memory_estimate` fits its ``memory_limit_gb``, else to its ``cg``.
    """
    solver = as_solver(solver)
    if not isinstance(solver, Auto):
        return solver, "requested"
    limit = memory_limit_bytes(solver.memory_limit_gb)
    dense_mem = memory_estimate(n, m, d, c, solver="cholesky")["total"]
    if n <= solver.dense_max_n and dense_mem <= limit:
        return Cholesky(), f"n = {n} <= dense_max_n = {solver.dense_max_n}"
    if n > solver.dense_max_n:
        return solver.cg, f"n = {n} > dense_max_n = {solver.dense_max_n}"
    return solver.cg, f"dense estimate {dense_mem / GIB:.1f} GiB > limit {limit / GIB:.1f} GiB"


def solver_from_dict(spec) -> Solver:
    """The inverse of ``solver.to_dict()``; also a bare name (``"cg"``, as run folders wrote before the
    solvers were records).  Device ids this process does not have give ``devices=None`` (all devices: the
    placement, not the numbers, changes)."""
    if isinstance(spec, str):
        return as_solver(spec)
    if not isinstance(spec, dict) or "name" not in spec:
        raise InputTypeError(f"solver must be a name or a dict with a 'name' ({', '.join(SOLVERS)}), got {spec!r}")
    spec = dict(spec)
    cls = _BY_NAME[check_choice("solver name", spec.pop("name"), SOLVERS)]
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(spec) - set(allowed))
    if unknown:
        raise InputTypeError(f"unknown {cls.name} solver field(s) {unknown}; allowed: {', '.join(allowed) or 'none'}")
    if isinstance(spec.get("cg"), dict):
        spec["cg"] = solver_from_dict({"name": "cg", **{k: v for k, v in spec["cg"].items() if k != "name"}})
    if spec.get("devices") is not None:
        here = {int(dev.id): dev for dev in jax.devices()}
        ids = [int(i) for i in spec["devices"]]
        spec["devices"] = tuple(here[i] for i in ids) if all(i in here for i in ids) else None
    return cls(**spec)


def check_key(key, *, required: bool):
    """``key`` as a typed JAX PRNG key (a raw ``uint32`` key such as ``jax.random.PRNGKey(0)`` is wrapped: the
    same key data, the same pivots); ``None`` only where not ``required`` (the dense solver draws nothing)."""
    if key is None:
        if required:
            raise InputTypeError("key must be a JAX PRNG key (jax.random.key(seed)): the CG solver samples the "
                                 "pivots of its preconditioner with it; got None")
        return None
    if isinstance(key, (jax.Array, np.ndarray)):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ():
            return key
        if key.dtype == np.uint32 and key.ndim == 1:
            try:
                return jax.random.wrap_key_data(jnp.asarray(key))
            except (TypeError, ValueError):
                pass
    raise InputTypeError(f"key must be a single JAX PRNG key (jax.random.key(seed)), got {type(key).__name__}"
                         + (f" of shape {key.shape}" if hasattr(key, "shape") else ""))
