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
Solvers: ``solver="cholesky"`` holds :math:`K` dense in float64 (n up to about 10^4); ``"cg"`` is
:func:`bayes_mogp.iterative_gp.exact_gp_predict` (preconditioned conjugate gradients on a blocked,
float32-stored, sharded kernel operator; the noise must then be given, not fitted, the amplitude comes from
the solve, the predictive variance is the Nystrom (DTC) approximation of the preconditioner, and each
``predict`` call runs the solve); ``"auto"`` picks CG above :data:`bayes_mogp.iterative_gp.predict.DENSE_MAX_N`.

Classification: class probabilities :math:`P(\arg\max_c y_c = k)` by Gauss-Hermite quadrature
(:func:`bayes_mogp.prediction.gaussian_class_probabilities`); the predicted class is the argmax of the mean.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property

import jax
import numpy as np

from .data import Dataset, InputTransform, TargetTransform, as_dataset
from .numerics import float64
from .posterior import Posterior
from .prediction import Prediction, gaussian_class_probabilities
from .validation import check_choice, check_positive
from .errors import InputError, InputTypeError

__all__ = ["fit", "NNGPPosterior", "DEFAULTS", "KERNELS", "estimate_cost", "FLOP_RATE"]

KERNELS = ("nngp", "ntk")
#: the settings of :func:`fit` (``b_var=None``: 1 for standardised inputs, 0 for images)
DEFAULTS = {"kernel": "nngp", "depth": 3, "activation": "relu", "w_var": 2.0, "b_var": None, "noise": "ml",
            "solver": "auto"}
SOLVERS = ("auto", "cholesky", "cg")

#: sustained float64 flop rate assumed by :func:`estimate_cost` (2 CPU cores: 1e10 to 2e10)
FLOP_RATE = 1e10


def estimate_cost(n_train: int, n_test: int, input_dim: int, depth: int, *, solver: str = "cholesky") -> dict:
    """Seconds and bytes of one fit and prediction.

    ``"cholesky"``: kernels (n^2 d + depth n^2), Cholesky (n^3/3), the marginal-likelihood
    eigendecomposition (~10 n^3), test kernels (n m d) at :data:`FLOP_RATE`; memory of three (n, n) float64
    matrices and the (m, n) test kernel.  ``"cg"``: calibrated on Fashion-MNIST (n = 60000, m = 10000,
    d = 784, depth 3, 114 CG iterations) at 1100 CPU-seconds on 2 cores, 90% of them in the n^2 stages
    (kernel tiles, preconditioner, CG) and 10% in the n m stages (test kernel, variances); the memory is
    :func:`bayes_mogp.iterative_gp.memory_estimate`.  Both are upper-end estimates on 2 CPU cores."""
    n, m = n_train, n_test
    if solver == "cg":
        from .iterative_gp import memory_estimate

        scale = (input_dim + 20 * depth) / (784 + 60)
        seconds = 1100.0 * (0.9 * (n / 60000) ** 2 + 0.1 * n * m / 6e8) * (0.5 + 0.5 * scale)
        return {"seconds": seconds, "bytes": memory_estimate(n, m, input_dim, 10, solver="cg")["total"]}
    flops = 2 * (n * n + n * m) * (input_dim + 20 * depth) + n**3 / 3 + 10 * n**3 + 2 * n * n * m
    return {"seconds": 2 * flops / FLOP_RATE, "bytes": 8 * (3 * n * n + 2 * n * m)}


@float64
def fit(key, data, y=None, **settings) -> "NNGPPosterior":
    """Fit the exact GP on ``data`` (a :class:`bayes_mogp.data.Dataset`, or arrays ``x``, ``y``; integer ``y``
    are class labels).  Settings: see :data:`DEFAULTS` and the module docstring.  ``key`` is accepted for
    the common ``fit(key, data)`` signature; the exact GP draws nothing at random.  Runs in float64
    (:func:`bayes_mogp.numerics.float64`) whatever the caller's JAX setting."""
    from .gp import amplitude_mle, noise_mle
    from .iterative_gp.predict import DENSE_MAX_N
    from .kernels import kernel_diagonals, nngp_kernel

    del key
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise InputTypeError(f"unknown NNGP setting(s) {unknown}; allowed: {', '.join(DEFAULTS)}")
    data: Dataset = as_dataset(data, y)
    s = {**DEFAULTS, **settings}
    check_choice("kernel", s["kernel"], KERNELS)
    if s["b_var"] is None:
        s["b_var"] = 1.0 if data.input_transform.kind == "standardize" else 0.0
    t0 = time.perf_counter()
    x, yt = data.inputs(), data.targets()
    kw = dict(depth=s["depth"], activation=s["activation"], w_var=s["w_var"], b_var=s["b_var"])
    check_choice("solver", s["solver"], SOLVERS)
    parts = dict(x_train=x, y_train=yt, data_info=data.describe(), input_transform=data.input_transform,
                 target_transform=data.target_transform, task=data.task, num_classes=data.num_classes)
    if s["solver"] == "cg" or (s["solver"] == "auto" and data.n_train > DENSE_MAX_N):
        if s["noise"] == "ml":
            raise InputError(f"noise='ml' needs the dense solver (n <= {DENSE_MAX_N}); with {data.n_train} "
                             f"training points give a relative noise, e.g. noise=1e-3")
        rel = check_positive("noise", s["noise"])
        s["solver"] = "cg"
        diag = kernel_diagonals(x, **kw)[0 if s["kernel"] == "nngp" else 1]  # NTK: relative to mean diag Theta
        noise_var = rel * float(np.mean(np.asarray(diag)))
        return NNGPPosterior(settings=s, relative_noise=rel, noise_var=noise_var, amplitude=float("nan"),
                             timings={"seconds": time.perf_counter() - t0}, **parts)
    s["solver"] = "cholesky"
    k = np.asarray(nngp_kernel(x, **kw))
    dbar = float(np.mean(np.diag(k)))
    if s["noise"] == "ml":
        rel, noise_var, amp = noise_mle(k, yt)
    else:
        rel = check_positive("noise", s["noise"])
        noise_var = rel * dbar
        amp = amplitude_mle(k, yt, noise_var=noise_var)
    post = NNGPPosterior(settings=s, relative_noise=rel, noise_var=noise_var, amplitude=amp,
                         timings={"seconds": time.perf_counter() - t0}, **parts)
    post.__dict__["kernel_train"] = k  # the cached_property's value, computed here already
    return post


@dataclass(frozen=True, eq=False, repr=False)
class NNGPPosterior(Posterior):
    """A fitted exact GP (NNGP or NTK ensemble): training inputs/targets in model units, noise, amplitude
    (NaN for ``solver="cg"``: it comes from each prediction's solve, reported in ``Prediction.info``)."""

    settings: dict
    x_train: np.ndarray
    y_train: np.ndarray
    relative_noise: float
    noise_var: float
    amplitude: float
    data_info: dict
    input_transform: InputTransform
    target_transform: TargetTransform | None
    task: str
    num_classes: int | None
    timings: dict = field(default_factory=dict)
    kind = "nngp"
    has_draws = False
    diagnostic_vars = ()

    @property
    def _kernel_kwargs(self) -> dict:
        s = self.settings
        return dict(depth=s["depth"], activation=s["activation"], w_var=s["w_var"], b_var=s["b_var"])

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
        if self.settings.get("solver") == "cg":
            from .iterative_gp import exact_gp_predict

            res = exact_gp_predict(self.x_train, self.y_train, xm, kernel=self.settings["kernel"],
                                   noise_var=self.noise_var, solver="cg", variance="nystrom", progress=progress, **kw)
            return res.mean, res.var, {"jitter": 0.0, **res.info}
        kss, _ = kernel_diagonals(xm, **kw)
        if self.settings["kernel"] == "nngp":
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
        the jitter and the amplitude (and, for ``solver="cg"``, the solver's report).  ``progress``: a callback
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

        if self.settings.get("solver") == "cg":
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

    @property
    def y_observed(self) -> np.ndarray:
        """The training targets in the user's units (regression) or as class labels (classification)."""
        if self.task == "classification":
            return np.argmax(self.y_train, axis=-1)
        return self.target_transform.inverse_mean(self.y_train)

    def to_inference_data(self):
        """ArviZ InferenceData: the fitted amplitude and noise as a single draw (``posterior``), the exact
        leave-one-out densities (``log_likelihood``, dense solver; so that ``arviz.loo`` is this GP's LOO) and
        the training targets in the user's units (``observed_data``)."""
        import arviz as az

        post = {"amplitude": np.full((1, 1), self.amplitude), "noise_var": np.full((1, 1), self.noise_var),
                "relative_noise": np.full((1, 1), self.relative_noise)}
        ll = None if self.settings.get("solver") == "cg" else {"y": self.pointwise_loo()[None, None]}
        return az.from_dict(posterior=post, log_likelihood=ll, observed_data={"y": self.y_observed})

    def _arrays(self) -> dict:
        from .runs import task_arrays

        return {"x_train": self.x_train, "y_train": self.y_train, "amplitude": np.asarray(self.amplitude),
                "noise_var": np.asarray(self.noise_var), "relative_noise": np.asarray(self.relative_noise),
                **self.input_transform.to_arrays(), **task_arrays(self.task, self.num_classes, self.target_transform)}

    def _manifest_spec(self) -> dict:
        return {**self.settings, "timings": self.timings}

    @classmethod
    def _from_run(cls, spec, a, idata, data_info) -> "NNGPPosterior":
        from .runs import task_from_arrays

        timings = spec.pop("timings", {})
        if "fit_seconds" in timings:  # runs written before the timings were named as every model's
            timings = {"seconds": timings["fit_seconds"]}
        task, num_classes, target = task_from_arrays(a)
        spec.setdefault("solver", "cholesky")
        return cls(settings=spec, x_train=a["x_train"], y_train=a["y_train"],
                   relative_noise=float(a["relative_noise"]), noise_var=float(a["noise_var"]),
                   amplitude=float(a["amplitude"]), data_info=data_info, input_transform=InputTransform.from_arrays(a),
                   target_transform=target, task=task, num_classes=num_classes, timings=timings)
