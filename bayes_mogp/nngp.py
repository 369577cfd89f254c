r"""Exact GP regression with the NNGP or NTK kernel of a deep network: ``fit(key, data) -> NNGPPosterior``.

The infinite-width limit in the GP regime (Lee et al. 2023 with :math:`\rho = 0`; the post *Infinitely Wide Neural Networks*, 2022): outputs are
independent GPs with the NNGP kernel :math:`K` of :func:`bayes_mogp.kernels.nngp_kernel`
(``depth`` hidden layers, ``activation``, weight and bias variances).  Targets :math:`Y` (n, k), in the
model's units (standardised regression targets, or one-hot labels minus 1/C), are modelled as
:math:`Y_{:,c} \sim N(0, s\,(K + \sigma^2 I))`:

* ``kernel="nngp"``: the exact GP posterior (:func:`bayes_mogp.gp.gp_posterior`, float64 Cholesky with
  adaptive jitter): mean :math:`K_*(K + \sigma^2 I)^{-1}Y`, latent variance
  :math:`s\,(K_{**} - K_*(K+\sigma^2I)^{-1}K_*^\top)`;
* ``kernel="ntk"``: the infinite ensemble of networks trained by gradient flow to :math:`t = \infty`
  (:func:`bayes_mogp.gp.ntk_ensemble_predict`), with the NTK regularised by the same relative noise.

Noise and amplitude are fitted on the training data only: ``noise="ml"`` maximises the marginal
likelihood over the relative noise :math:`r = \sigma^2/\bar d` (:func:`bayes_mogp.gp.noise_mle`,
:math:`\bar d` the mean diagonal of :math:`K`) with the amplitude :math:`s` in closed form; a number fixes
:math:`r` (``1e-3``, the rule of Lee et al. 2018) and fits only :math:`s`.  The predictive law of a new
observation is :math:`N(\mu_*, s\,(v_* + \sigma^2))` in model units, mapped back to the user's units.
Solvers (:mod:`bayes_mogp.iterative_gp.solvers`): :class:`~bayes_mogp.iterative_gp.Cholesky` holds
:math:`K` dense in float64 (n up to about 10^4); :class:`~bayes_mogp.iterative_gp.CG` is
:func:`bayes_mogp.iterative_gp.exact_gp_predict` (preconditioned conjugate gradients on a blocked,
float32-stored, sharded kernel operator; the noise must then be given, not fitted, the amplitude comes from
the solve, the predictive variance is the Nystrom (DTC) approximation of the preconditioner, and each
``predict`` call runs the solve); :class:`~bayes_mogp.iterative_gp.Auto` (the default) lets
:func:`bayes_mogp.iterative_gp.choose_solver` pick CG above ``dense_max_n`` points
(:data:`bayes_mogp.iterative_gp.DENSE_MAX_N`).  The names ``"auto"``, ``"cholesky"`` and ``"cg"`` stand for
their defaults.  The CG solver samples its preconditioner's pivots with the PRNG key given to :func:`fit`: the
posterior keeps that key (``key_data``), so every ``predict`` uses the same pivots and gives the same numbers.

Settings: one frozen, validated record, :class:`NNGPSettings`; :func:`fit` takes one (``settings=``) and/or
its field names as keyword arguments, and the fitted posterior keeps the resolved record (``b_var`` from the
data, the solver that ran) as ``post.settings``::

    post = nngp.fit(jax.random.key(0), x, y, depth=3, noise=1e-3, solver="cg")
    post.settings.solver          # CG(tol=1e-05, ...)

Classification: class probabilities :math:`P(\arg\max_c y_c = k)` by Gauss-Hermite quadrature
(:func:`bayes_mogp.prediction.gaussian_class_probabilities`); the predicted class is the argmax of the mean.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Mapping

import jax
import numpy as np

from .data import Dataset, InputTransform, as_dataset
from .numerics import float64
from .posterior import FitRecord, Posterior
from .prediction import Prediction, gaussian_class_probabilities
from .validation import check_choice, check_int, check_nonnegative, check_positive
from .errors import InputError, InputTypeError

__all__ = ["fit", "NNGPPosterior", "NNGPSettings", "KERNELS", "estimate_cost", "FLOP_RATE", "COMPILE_SECONDS"]

KERNELS = ("nngp", "ntk")

#: sustained float64 flop rate assumed by :func:`estimate_cost`: half the dgemm rate measured on 2 CPU cores
#: (1.0e11; Cholesky 4e10, eigh 1.2e11 counted at 10 n^3).  Held within a factor 5 of timed fits, with and
#: without the marginal-likelihood noise (n = 2000, with :data:`COMPILE_SECONDS`: measured 0.7x and 0.8x the
#: estimate), in CI's slow pass.
FLOP_RATE = 5e10
#: Seconds of XLA compilation of the dense path for a new (n, m), measured on 2 CPU cores: without it the estimate
#: was 3x short of a timed fit at n = 2000 with a fixed noise (0.6 s against 1.9 s).
COMPILE_SECONDS = 1.5

# the key of run folders written before the key was stored: their CG predictions used this one
_LEGACY_KEY_DATA = (0, 0)
_LEGACY_KEY_IMPL = "threefry2x32"


@dataclass(frozen=True)
class NNGPSettings:
    """What an NNGP/NTK fit does (the module docstring has the model).

    ``kernel`` ``"nngp"`` (exact GP) or ``"ntk"`` (the NTK ensemble at t = inf); ``depth`` >= 1 hidden layers;
    ``activation`` (:data:`bayes_mogp.kernels.ACTIVATIONS`); ``w_var`` > 0 and ``b_var`` >= 0 the weight and
    bias variances (``b_var=None``: 1 for standardised inputs, 0 for images, fixed by :func:`fit`);
    ``noise`` ``"ml"`` (relative noise by maximum marginal likelihood, dense solver only) or a number > 0 (the
    noise variance relative to the mean kernel diagonal, e.g. 1e-3); ``solver`` ``Auto(...)``,
    ``Cholesky()`` or ``CG(...)`` (:mod:`bayes_mogp.iterative_gp.solvers`) or their names, stored as the record.
    """

    kernel: str = "nngp"
    depth: int = 3
    activation: str = "relu"
    w_var: float = 2.0
    b_var: float | None = None
    noise: float | str = "ml"
    solver: Any = "auto"

    def __post_init__(self):
        from .iterative_gp.solvers import as_solver
        from .kernels.closed_form import ACTIVATIONS

        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731  (frozen: validated copies)
        check_choice("kernel", self.kernel, KERNELS)
        set_("depth", check_int("depth", self.depth, minimum=1))
        check_choice("activation", self.activation, ACTIVATIONS)
        set_("w_var", check_positive("w_var", self.w_var))
        if self.b_var is not None:
            set_("b_var", check_nonnegative("b_var", self.b_var))
        if isinstance(self.noise, str):
            if self.noise != "ml":
                raise InputError(f"noise must be 'ml' or a number > 0 (the noise variance relative to the mean "
                                 f"kernel diagonal, e.g. 1e-3), got {self.noise!r}")
        else:
            set_("noise", check_positive("noise", self.noise))
        set_("solver", as_solver(self.solver))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **changes) -> "NNGPSettings":
        """A copy with ``changes`` (field names; anything else is an :class:`InputTypeError` naming it)."""
        unknown = sorted(set(changes) - set(self.names()))
        if unknown:
            raise InputTypeError(f"unknown NNGP setting(s) {unknown}; allowed: {', '.join(self.names())}")
        return dataclasses.replace(self, **changes)

    @property
    def kernel_spec(self):
        """The kernel as a :class:`bayes_mogp.iterative_gp.KernelSpec` (needs ``b_var``: a fitted posterior's)."""
        from .iterative_gp import KernelSpec

        if self.b_var is None:
            raise InputError("b_var is None: it is fixed from the data by fit (post.settings.kernel_spec)")
        return KernelSpec(self.kernel, self.depth, self.activation, self.w_var, self.b_var)

    def to_dict(self) -> dict:
        """JSON-able fields; the solver as its name and fields (``{"name": "cg", "tol": ..., ...}``)."""
        out = {f: getattr(self, f) for f in self.names()}
        out["solver"] = self.solver.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: Mapping) -> "NNGPSettings":
        """The inverse of :meth:`to_dict` (unknown names refused); the solver may also be a bare name, as
        run folders wrote it before the solvers were records."""
        from .iterative_gp.solvers import solver_from_dict

        d = dict(d)
        if "solver" in d:
            d["solver"] = solver_from_dict(d["solver"])
        return cls().replace(**d)


def estimate_cost(n_train: int, n_test: int, input_dim: int, depth: int, *, solver="cholesky", noise="ml") -> dict:
    """Seconds and bytes of one fit and prediction.

    ``solver`` ``"cholesky"`` or ``"cg"`` (or the solver record); ``noise`` as in :class:`NNGPSettings`
    (``"ml"`` adds the marginal-likelihood eigendecomposition).
    ``"cholesky"``: kernels (n^2 d + depth n^2), Cholesky (n^3/3), with ``noise="ml"`` the
    eigendecomposition (~10 n^3), test kernels (n m d), at :data:`FLOP_RATE` and counted twice, plus
    :data:`COMPILE_SECONDS` (each new training-set size compiles the kernel and solver again); memory of
    three (n, n) float64 matrices and the (m, n) test kernel.  ``"cg"``: calibrated on Fashion-MNIST (n = 60000, m = 10000,
    d = 784, depth 3, 114 CG iterations) at 1100 CPU-seconds on 2 cores, 90% of them in the n^2 stages
    (kernel tiles, preconditioner, CG) and 10% in the n m stages (test kernel, variances); the memory is
    :func:`bayes_mogp.iterative_gp.memory_estimate`.  Both are upper-end estimates on 2 CPU cores."""
    n, m = n_train, n_test
    if getattr(solver, "name", solver) == "cg":
        from .iterative_gp import memory_estimate

        scale = (input_dim + 20 * depth) / (784 + 60)
        seconds = 1100.0 * (0.9 * (n / 60000) ** 2 + 0.1 * n * m / 6e8) * (0.5 + 0.5 * scale)
        return {"seconds": seconds, "bytes": memory_estimate(n, m, input_dim, 10, solver="cg")["total"]}
    eig = 10 * n**3 if noise == "ml" else 0
    flops = 2 * (n * n + n * m) * (input_dim + 20 * depth) + n**3 / 3 + eig + 2 * n * n * m
    return {"seconds": COMPILE_SECONDS + 2 * flops / FLOP_RATE, "bytes": 8 * (3 * n * n + 2 * n * m)}


@float64
def fit(key, data, y=None, settings: NNGPSettings | None = None, **overrides) -> "NNGPPosterior":
    """Fit the exact GP on ``data`` (a :class:`bayes_mogp.data.Dataset`, or arrays ``x``, ``y``; integer ``y``
    are class labels).

    ``settings``: an :class:`NNGPSettings` (None: the defaults); ``overrides``: its field names
    (``fit(key, x, y, depth=2, noise=1e-3, solver="cg")``), applied to ``settings``; another name is an
    :class:`InputTypeError` listing the allowed ones.  The solver is resolved with
    :func:`bayes_mogp.iterative_gp.choose_solver` for the training set's size.  ``key``: a JAX PRNG key; the
    dense solver draws nothing (``None`` is accepted there), the CG solver needs it (its preconditioner's
    pivots) and the posterior keeps it for every ``predict``.  Runs in float64
    (:func:`bayes_mogp.numerics.float64`) whatever the caller's JAX setting."""
    from .gp import amplitude_mle, noise_mle
    from .iterative_gp.solvers import CG, check_key, choose_solver
    from .kernels import kernel_diagonals, nngp_kernel

    if settings is None:
        settings = NNGPSettings()
    elif not isinstance(settings, NNGPSettings):
        raise InputTypeError(f"settings must be an NNGPSettings (or None), got {type(settings).__name__}")
    s = settings.replace(**overrides)
    data: Dataset = as_dataset(data, y)
    if s.b_var is None:
        s = s.replace(b_var=1.0 if data.input_transform.kind == "standardize" else 0.0)
    solver, reason = choose_solver(s.solver, data.n_train, 0, data.input_dim, data.num_outputs)  # m: not known yet
    s = s.replace(solver=solver)
    t0 = time.perf_counter()
    x, yt = data.inputs(), data.targets()
    kw = s.kernel_spec.kernel_kwargs
    parts = dict(x_train=x, y_train=yt, data_info=data.describe(), input_transform=data.input_transform,
                 target_transform=data.target_transform, task=data.task, num_classes=data.num_classes)
    if isinstance(solver, CG):
        if s.noise == "ml":
            raise InputError(f"noise='ml' needs the dense solver, but the CG solver runs ({reason}); with "
                             f"{data.n_train} training points give a relative noise, e.g. noise=1e-3")
        key = check_key(key, required=True)
        rel = s.noise
        diag = kernel_diagonals(x, **kw)[0 if s.kernel == "nngp" else 1]  # NTK: relative to mean diag Theta
        noise_var = rel * float(np.mean(np.asarray(diag)))
        return NNGPPosterior(settings=s, relative_noise=rel, noise_var=noise_var, amplitude=float("nan"),
                             timings={"seconds": time.perf_counter() - t0},
                             key_data=np.asarray(jax.random.key_data(key), dtype=np.uint32),
                             key_impl=str(jax.random.key_impl(key)), **parts)
    k = np.asarray(nngp_kernel(x, **kw))
    dbar = float(np.mean(np.diag(k)))
    if s.noise == "ml":
        rel, noise_var, amp = noise_mle(k, yt)
    else:
        rel = s.noise
        noise_var = rel * dbar
        amp = amplitude_mle(k, yt, noise_var=noise_var)
    post = NNGPPosterior(settings=s, relative_noise=rel, noise_var=noise_var, amplitude=amp,
                         timings={"seconds": time.perf_counter() - t0}, **parts)
    post.__dict__["kernel_train"] = k  # the cached_property's value, computed here already
    return post


@dataclass(frozen=True, eq=False, repr=False)
class NNGPPosterior(FitRecord, Posterior):
    """A fitted exact GP (NNGP or NTK ensemble): the resolved :class:`NNGPSettings` (``b_var`` fixed, the
    solver a ``Cholesky()`` or ``CG(...)`` record), training inputs/targets in model units, noise, amplitude
    (NaN with CG: it comes from each prediction's solve, reported in ``Prediction.info``) and, with CG, the
    fit's PRNG key (``key_data``, ``key_impl``): every ``predict`` samples the preconditioner's pivots with it."""

    settings: NNGPSettings
    x_train: np.ndarray
    y_train: np.ndarray
    relative_noise: float
    noise_var: float
    amplitude: float
    key_data: np.ndarray | None = None  # CG: jax.random.key_data of the fit's key (uint32)
    key_impl: str | None = None  # CG: its PRNG implementation (jax.random.key_impl), e.g. "threefry2x32"
    kind = "nngp"
    has_draws = False
    diagnostic_vars = ()

    @property
    def _kernel_kwargs(self) -> dict:
        return self.settings.kernel_spec.kernel_kwargs

    @property
    def _is_cg(self) -> bool:
        return self.settings.solver.name == "cg"

    @property
    def key(self):
        """The fit's PRNG key (CG), rebuilt from ``key_data``; None for the dense solver."""
        if self.key_data is None:
            return None
        return jax.random.wrap_key_data(np.asarray(self.key_data, dtype=np.uint32), impl=self.key_impl)

    @cached_property
    def kernel_train(self) -> np.ndarray:
        """The (n, n) NNGP kernel of the training inputs (dense solver), computed once."""
        from .kernels import nngp_kernel

        with jax.enable_x64(True):
            return np.asarray(nngp_kernel(self.x_train, **self._kernel_kwargs))

    @float64
    def predict_latent(self, x, progress=None):
        """Model-unit predictive mean (m, k) and latent variance (m,) of f at user-unit inputs ``x``, before
        the amplitude; and ``info``: the jitter the Cholesky needed, and (CG) the solver's report with the
        amplitude from its solve.  ``progress``: the iterative solver's callback."""
        from .gp import gp_posterior, ntk_ensemble_predict
        from .kernels import kernel_diagonals, nngp_kernel, nngp_ntk_kernels

        xm = self.input_transform(self.check_inputs(x))
        kw = self._kernel_kwargs
        if self._is_cg:
            from .iterative_gp import exact_gp_predict

            res = exact_gp_predict(self.x_train, self.y_train, xm, self.settings.kernel_spec, self.noise_var,
                                   key=self.key, solver=self.settings.solver, variance="nystrom", progress=progress)
            return res.mean, res.var, {"jitter": 0.0, **res.info}
        kss, _ = kernel_diagonals(xm, **kw)
        if self.settings.kernel == "nngp":
            ks = nngp_kernel(xm, self.x_train, **kw)
            post = gp_posterior(self.kernel_train, ks, self.y_train, noise_var=self.noise_var, k_test_test=kss)
        else:
            k, th = nngp_ntk_kernels(self.x_train, **kw)
            ks, ths = nngp_ntk_kernels(xm, self.x_train, **kw)
            diag_reg = self.relative_noise * float(np.mean(np.diag(np.asarray(th))))
            post = ntk_ensemble_predict(th, ths, self.y_train, diag_reg=diag_reg, nngp_train_train=k,
                                        nngp_test_train=ks, nngp_test_test=kss)
        return np.asarray(post.mean), np.asarray(post.var), {"jitter": float(post.jitter), "amplitude": self.amplitude}

    def predict(self, x, *, progress=None) -> Prediction:
        """Predictive distribution of a new observation at ``x`` (m, d), user units; ``Prediction.info`` holds
        the jitter and the amplitude (and, with CG, the solver's report; the pivots from the fit's key).  ``progress``: a callback
        for the iterative solver's stages (:class:`bayes_mogp.iterative_gp.Progress` events)."""
        mean, var, info = self.predict_latent(x, progress=progress)
        var_y = info["amplitude"] * (np.maximum(var, 0.0) + self.noise_var)  # (m,)
        sd = np.sqrt(var_y)[:, None] * np.ones(mean.shape[1])
        if self.task == "regression":
            t = self.target_transform
            return Prediction("regression", t.inverse_mean(mean)[None], t.inverse_scale(sd)[None], info=info)
        with jax.enable_x64(True):
            probs = np.asarray(gaussian_class_probabilities(mean, var_y))
        return Prediction("classification", mean[None], sd[None], probs=probs, info=info)

    @float64
    def pointwise_loo(self) -> np.ndarray:
        r"""(n,) exact leave-one-out log predictive densities :math:`\log p(y_i \mid y_{-i})` of the training
        targets (all outputs jointly; user units for regression), Rasmussen and Williams (2006) eq. 5.12.
        Dense solver only: it eigendecomposes the n x n kernel."""
        import jax.numpy as jnp

        if self._is_cg:
            raise InputError("pointwise_loo needs the dense kernel (solver='cholesky', n <= 10000); this posterior "
                             "was fitted with solver='cg'")

        from .mogp.likelihood import eigen_base, loo_log_density

        base = eigen_base(self.kernel_train, self.y_train)
        loo = np.asarray(loo_log_density(base, self.amplitude, self.amplitude * self.noise_var, jnp.zeros(0),
                                         jnp.zeros((self.x_train.shape[0], 0))))
        return self.to_user_log_density(loo)

    def loo(self, **kwargs):
        """The exact leave-one-out (:meth:`pointwise_loo`) as ArviZ's ``ELPDData`` (``elpd_loo``, ``se``,
        ``loo_i``).  Not PSIS: the exact GP has one fitted state, not draws, so there are no importance
        weights; ``pareto_k`` is 0 and ``p_loo`` is not defined (NaN)."""
        import arviz as az
        import xarray as xr

        del kwargs
        loo_i = self.pointwise_loo()
        n = loo_i.shape[0]
        return az.ELPDData(
            data=[float(loo_i.sum()), float(np.sqrt(n * np.var(loo_i))), float("nan"), 1, n, False,
                  xr.DataArray(loo_i, dims=["y_dim_0"]), xr.DataArray(np.zeros(n), dims=["y_dim_0"]), "log", 0.7],
            index=["elpd_loo", "se", "p_loo", "n_samples", "n_data_points", "warning", "loo_i", "pareto_k", "scale",
                   "good_k"])

    def to_inference_data(self):
        """ArviZ InferenceData: the fitted amplitude and noise as a single draw (``posterior``), the exact
        leave-one-out densities (``log_likelihood``, dense solver; so that ``arviz.loo`` is this GP's LOO) and
        the training targets in the user's units (``observed_data``)."""
        import arviz as az

        post = {"amplitude": np.full((1, 1), self.amplitude), "noise_var": np.full((1, 1), self.noise_var),
                "relative_noise": np.full((1, 1), self.relative_noise)}
        ll = None if self._is_cg else {"y": self.pointwise_loo()[None, None]}
        return az.from_dict(posterior=post, log_likelihood=ll, observed_data={"y": self.y_observed})

    def _arrays(self) -> dict:
        from .runs import task_arrays

        return {"x_train": self.x_train, "y_train": self.y_train, "amplitude": np.asarray(self.amplitude),
                "noise_var": np.asarray(self.noise_var), "relative_noise": np.asarray(self.relative_noise),
                **self.input_transform.to_arrays(), **task_arrays(self.task, self.num_classes, self.target_transform),
                **({} if self.key_data is None else {"key_data": np.asarray(self.key_data, dtype=np.uint32),
                                                     "key_impl": np.asarray(self.key_impl)})}

    def _manifest_spec(self) -> dict:
        return {**self.settings.to_dict(), "timings": self.timings}

    @classmethod
    def _from_run(cls, spec, a, idata, data_info) -> "NNGPPosterior":
        from .runs import task_from_arrays

        timings = spec.pop("timings", {})
        if "fit_seconds" in timings:  # runs written before the timings were named as every model's
            timings = {"seconds": timings["fit_seconds"]}
        task, num_classes, target = task_from_arrays(a)
        spec.setdefault("solver", "cholesky")  # runs written before the solver was recorded: dense
        settings = NNGPSettings.from_dict(spec)
        if settings.solver.name not in ("cholesky", "cg"):
            raise InputError(f"an NNGP run folder records the solver that ran (cholesky or cg), got "
                             f"{settings.solver.name!r}")
        key_data = key_impl = None
        if "key_data" in a:
            key_data, key_impl = np.asarray(a["key_data"], dtype=np.uint32), str(a["key_impl"])
        elif settings.solver.name == "cg":  # written before the key was stored: its predictions used key(0)
            key_data, key_impl = np.asarray(_LEGACY_KEY_DATA, dtype=np.uint32), _LEGACY_KEY_IMPL
        return cls(settings=settings, x_train=a["x_train"], y_train=a["y_train"],
                   relative_noise=float(a["relative_noise"]), noise_var=float(a["noise_var"]),
                   amplitude=float(a["amplitude"]), data_info=data_info, input_transform=InputTransform.from_arrays(a),
                   target_transform=target, task=task, num_classes=num_classes, timings=timings,
                   key_data=key_data, key_impl=key_impl)
