r"""Finite networks trained by gradient descent, against their linearisation and their infinite-width NTK.

The networks are those of eq. (1) of Lee, Ayed, Lee, Yang, Jung and Caron (*Deep neural networks with dependent
weights*): :func:`bayes_mogp.networks.forward`, in the NTK parametrisation.  The trainable weights are standard
normal, :math:`V \sim N(0, 1)`; the first layer divides by :math:`\sqrt{d}`, and hidden node :math:`j` of layer
:math:`l` multiplies its outgoing weights by :math:`\sqrt{\lambda_j}`, with :math:`\lambda_j \sim F_p` drawn
once at initialisation and kept fixed (per-node random variances as an initialisation, Blier et al. 2019;
Wolinski et al. 2020).  Under the iid prior :math:`\lambda = c/p` this is the NTK parametrisation of Jacot et al.
(2018) with :math:`\sigma_w^2 = c` (He: ``c = 2``).

Training is full-batch gradient descent on :math:`L(\theta) = \frac{1}{2n}\sum_i (f_\theta(x_i) - y_i)^2`
(neural-tangents' normalisation), ``steps`` steps, one initialisation after another.  The step size is
``learning_rate`` in units of the stability limit of the network's own initial NTK,
:math:`\eta = \texttt{learning\_rate} / \lambda_{max}(\hat\Theta_0 / n)` (gradient descent is stable below 2):
under a MoGP-regime prior the NTK is random, and one fixed step would diverge on some draws and crawl on
others.  In the GP regime :math:`\hat\Theta_0` converges and so does the step.
For each initialisation, at the end of training:

* ``linearisation_distance``: :math:`\lVert f_T - f^{lin}_T\rVert / \lVert f^{lin}_T - f_0\rVert` on the test
  inputs, where :math:`f^{lin}` is the network linearised at its initialisation (neural-tangents
  ``linearize``) and trained by the same steps: the share of the change that training makes which the
  linear model misses.  Lee, Xiao et al. (2019): :math:`O(p^{-1/2})` for iid weights.
* ``ntk_change``: :math:`\lVert \hat\Theta_T - \hat\Theta_0\rVert_F / \lVert \hat\Theta_0\rVert_F`, the empirical
  NTK (neural-tangents ``empirical_ntk_fn``) on the training inputs after and before training.
* ``ntk_prediction_error``: :math:`\lVert f_T - f^{\infty}_T\rVert / \lVert f^{\infty}_T - f_0\rVert` on the
  test inputs, :math:`f^\infty` the closed-form gradient flow of the infinite-width NTK
  (neural-tangents ``predict.gradient_descent_mse`` at time ``steps``) started from the network's *own* initial
  outputs, so that the random initial function cancels and only the width effect remains.  The reference NTK
  is the limit's where it is deterministic (GP regime: hidden-layer variance the drift :math:`a`); in the MoGP
  regime the limit NTK is random, and the reference is the NTK with the mean variance
  :math:`E[p\lambda]` where that is finite (``ntk_reference`` says which; null where it is infinite).
* ``ntk_ensemble_mean_distance`` (one value per width, over the initialisations): the mean of the trained
  networks against the NTK ensemble's mean at the same time (:func:`bayes_mogp.gp.ntk_ensemble_predict`, the
  flow from zero initial outputs), :math:`\lVert \bar f_T - \mu_T\rVert / \lVert \mu_T\rVert`.  Beside
  ``ntk_prediction_error`` it shows why the network's own initial outputs are the reference: with ``K``
  initialisations the mean keeps the initial functions' average, of order :math:`K^{-1/2}` at any width.
* ``ntk_init_spread``: the coefficient of variation across initialisations of the mean diagonal of
  :math:`\hat\Theta_0`; it vanishes with width when the NTK has a deterministic limit and stays of order one
  when it is random.

:func:`lazy_training` repeats this over widths and reports each mean with its Monte Carlo standard error over
initialisations, and the log-log slopes against width (least squares, with the standard error from the
per-width standard errors by the delta method).  Written here because neural-tangents provides the pieces
(``linearize``, ``empirical_ntk_fn``, ``gradient_descent_mse``, ``stax``) but not networks with per-node
variances, nor the measurements.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import InputError
from ..numerics import float64
from ..networks import ACTIVATIONS, forward
from ..priors import PRIOR_NAMES, get_prior
from ..validation import check_choice, check_int, check_positive

__all__ = ["LazySettings", "toy_problem", "gradient_descent", "measure_width", "lazy_training", "estimate_seconds", "estimate_bytes",
           "reference_ntk", "ACTIVATIONS_LAZY"]

#: activations with a neural-tangents stax layer (the reference NTK is built from it)
_STAX = {"relu": "Relu", "erf": "Erf"}
ACTIVATIONS_LAZY = tuple(_STAX)


@dataclass(frozen=True)
class LazySettings:
    """Settings of a lazy-training measurement, each checked here.

    ``depth`` hidden layers of equal width; ``steps`` of gradient descent with ``learning_rate``;
    ``num_inits`` initialisations per width; the toy problem (:func:`toy_problem`): ``n_train`` and ``n_test``
    inputs on the sphere of radius :math:`\\sqrt{d}` in ``input_dim`` dimensions; ``activation``: ``relu`` or
    ``erf``."""

    depth: int = 1
    steps: int = 200
    learning_rate: float = 1.0
    num_inits: int = 8
    n_train: int = 16
    n_test: int = 32
    input_dim: int = 8
    activation: str = "relu"

    def __post_init__(self):
        for name, low in (("depth", 1), ("steps", 1), ("num_inits", 2), ("n_train", 2), ("n_test", 1),
                          ("input_dim", 1)):
            object.__setattr__(self, name, check_int(name, getattr(self, name), minimum=low))
        object.__setattr__(self, "learning_rate", check_positive("learning_rate", self.learning_rate))
        check_choice("activation", self.activation, ACTIVATIONS_LAZY)


def toy_problem(key, n_train: int, n_test: int, input_dim: int):
    """Inputs uniform on the sphere :math:`|x|^2 = d` and targets :math:`y = \\sin(2\\,x\\cdot u/\\sqrt d) + x_1
    x_2 / d` for a fixed unit vector :math:`u` (no noise): ``(x_train, y_train, x_test)`` with ``y`` ``(n, 1)``."""
    k1, k2, k3 = jax.random.split(key, 3)
    x = jax.random.normal(k1, (n_train + n_test, input_dim))
    x = x / jnp.linalg.norm(x, axis=1, keepdims=True) * math.sqrt(input_dim)
    u = jax.random.normal(k2, (input_dim,))
    u = u / jnp.linalg.norm(u)
    y = jnp.sin(2.0 * x @ u / math.sqrt(input_dim)) + x[:, 0] * x[:, min(1, input_dim - 1)] / input_dim
    return x[:n_train], y[:n_train, None], x[n_train:]


def _mean_variance(prior) -> float | None:
    r""":math:`E[\Lambda] = a + \int x\,\rho(dx)`, the limit of :math:`E[p\lambda]`, or None where it is infinite
    (horseshoe)."""
    lim = prior.limit
    with jax.enable_x64(True):
        value = float(lim.drift) + float(lim.remainder_mean(jnp.inf))
    return value if np.isfinite(value) and value > 0 else None


def reference_ntk(prior_name: str, width: int, settings: LazySettings, **hyper):
    """The reference infinite-width NTK's ``kernel_fn`` (neural-tangents ``stax``, NTK parametrisation) and what it
    is: ``(kernel_fn, label)``, or ``(None, label)`` where the prior has no finite mean variance."""
    from ..kernels import import_neural_tangents

    prior = get_prior(prior_name, width, **hyper)
    var = _mean_variance(prior)
    if prior.limit.regime == "GP":
        label = f"limit NTK (hidden-layer variance the drift a = {var:.4g})"
    elif var is not None:
        label = f"NTK of the mean variance E[p lam] = {var:.4g} (the MoGP limit's NTK is random)"
    else:
        return None, "none: E[p lam] is infinite for this prior, and the MoGP limit's NTK is random"
    stax = import_neural_tangents().stax
    act = getattr(stax, _STAX[settings.activation])
    layers = [stax.Dense(width, W_std=1.0, b_std=None, parameterization="ntk")]
    for layer in range(settings.depth):
        last = layer == settings.depth - 1
        layers += [act(), stax.Dense(1 if last else width, W_std=math.sqrt(var), b_std=None, parameterization="ntk")]
    _, _, kernel_fn = stax.serial(*layers)
    return kernel_fn, label


def _network(settings: LazySettings):
    phi = ACTIVATIONS[settings.activation]

    def apply(V, lam, x):
        b = [jnp.zeros(v.shape[1], x.dtype) for v in V]
        return forward(x, V, lam, b, phi=phi)

    return apply


def _init(key, prior_name: str, width: int, settings: LazySettings, hyper: dict):
    """One network's weights ``V`` (standard normal) and per-node variances ``lam`` (drawn here, outside any
    trace: some priors check their draws)."""
    dims = [settings.input_dim] + [width] * settings.depth + [1]
    k_v, k_lam = jax.random.split(key)
    kv = jax.random.split(k_v, len(dims) - 1)
    V = [jax.random.normal(kv[i], (dims[i], dims[i + 1])) for i in range(len(dims) - 1)]
    prior = get_prior(prior_name, width, **hyper)
    kl = jax.random.split(k_lam, settings.depth)
    lam = [jnp.asarray(prior.sample(kl[i], (width,)), V[0].dtype) for i in range(settings.depth)]
    return V, lam


def stacked_inits(key, prior_name: str, width: int, settings: LazySettings, hyper: dict, num_inits: int):
    """``num_inits`` networks of :func:`_init` from the splits of ``key``, stacked along a leading axis (the
    pytree ``(V, lam)`` that ``lax.map`` runs over one network at a time)."""
    inits = [_init(k, prior_name, width, settings, hyper) for k in jax.random.split(key, num_inits)]
    return jax.tree.map(lambda *a: jnp.stack(a), *inits)


def gradient_descent(f, params, x, y, step_size, steps: int):
    r"""``steps`` steps of full-batch gradient descent on :math:`\frac{1}{2n}\sum_i (f(\theta, x_i) - y_i)^2`
    (``lax.scan``, jittable); returns the trained parameters."""

    def loss(p):
        return 0.5 * jnp.mean((f(p, x) - y) ** 2)

    def step(p, _):
        return jax.tree.map(lambda a, g: a - step_size * g, p, jax.grad(loss)(p)), None

    return jax.lax.scan(step, params, None, length=steps)[0]


def measure_width(key, prior_name: str, width: int, settings: LazySettings, *, data=None, hyper=None) -> dict:
    """Every measurement of the module docstring for ``settings.num_inits`` networks of hidden width ``width``:
    arrays ``(num_inits,)`` under ``linearisation_distance``, ``ntk_change``, ``ntk_prediction_error`` (NaN where
    there is no reference NTK, the network is dead or its training diverged: ``dead``, ``diverged``) and
    ``ntk_init_trace`` (mean diagonal of the initial empirical NTK).

    ``data``: ``(x_train, y_train, x_test)`` (default :func:`toy_problem` from ``key``'s first split)."""
    from ..kernels import import_neural_tangents

    nt = import_neural_tangents()
    width = check_int("width", width, minimum=1)
    hyper = dict(hyper or {})
    k_data, k_init = jax.random.split(key)
    x_train, y_train, x_test = data if data is not None else toy_problem(k_data, settings.n_train, settings.n_test,
                                                                         settings.input_dim)
    apply = _network(settings)
    eta, steps, n = settings.learning_rate, settings.steps, x_train.shape[0]
    kernel_fn, _ = reference_ntk(prior_name, width, settings, **hyper)
    if kernel_fn is not None:
        theta_tt = kernel_fn(x_train, None, "ntk")
        theta_st = kernel_fn(x_test, x_train, "ntk")

    def train(f, params, step_size):
        return gradient_descent(f, params, x_train, y_train, step_size, steps)

    def one(args):
        V0, lam = args

        def f(V, x):
            return apply(V, lam, x)

        ntk = nt.empirical_ntk_fn(f, trace_axes=(-1,), vmap_axes=0)
        th0 = ntk(x_train, None, V0)
        # the step in units of the stability limit of this network's own initial NTK (stable below 2)
        step_size = eta / jnp.linalg.eigvalsh(th0 / n)[-1]
        f_lin = nt.linearize(f, V0)
        V_T, V_lin = train(f, V0, step_size), train(f_lin, V0, step_size)
        thT = ntk(x_train, None, V_T)
        return {"f0_train": f(V0, x_train), "f0": f(V0, x_test), "fT": f(V_T, x_test), "flin": f_lin(V_lin, x_test),
                "ntk_change": jnp.linalg.norm(thT - th0) / jnp.linalg.norm(th0),
                "ntk_init_trace": jnp.mean(jnp.diagonal(th0)), "step_size": step_size}

    stacked = stacked_inits(k_init, prior_name, width, settings, hyper, settings.num_inits)
    res = jax.lax.map(jax.jit(one), stacked)  # one initialisation at a time: the memory of one network's Jacobian
    f0, fT, flin = (np.asarray(res[k], dtype=float) for k in ("f0", "fT", "flin"))
    out = {"linearisation_distance": _rel(fT - flin, flin - f0), "ntk_change": np.asarray(res["ntk_change"], float),
           "ntk_init_trace": np.asarray(res["ntk_init_trace"], float), "step_size": np.asarray(res["step_size"], float)}
    # a network whose every hidden node has variance 0 (the Bernoulli prior draws that with probability about
    # e^-rate) computes 0 and has no gradient: it cannot train, and its measurements are NaN
    dead = ~(out["ntk_init_trace"] > 0)
    # gradient descent at the initial NTK's stable step can still blow up where the NTK grows during training
    # (the catapult of Lewkowycz et al. 2020; MoGP-regime priors, whose few large nodes move the NTK by O(1))
    diverged = ~dead & ~(np.all(np.isfinite(fT.reshape(len(fT), -1)), axis=1) & np.isfinite(out["ntk_change"]))
    out["dead"], out["diverged"] = dead, diverged
    if kernel_fn is None:
        out["ntk_prediction_error"] = np.full(settings.num_inits, np.nan)
    else:
        flows = [nt.predict.gradient_descent_mse(theta_tt, y_train, learning_rate=float(res["step_size"][i]))
                 for i in range(settings.num_inits)]  # the gradient flow at each network's own step size
        f_inf = np.stack([np.asarray(flow(float(steps), res["f0_train"][i], res["f0"][i], theta_st)[1], float)
                          for i, flow in enumerate(flows)])
        out["ntk_prediction_error"] = _rel(fT - f_inf, f_inf - f0)
        # the NTK ensemble's mean (bayes_mogp.gp.ntk_ensemble_predict) at the same time: the flow from zero initial
        # outputs, which is the mean over initialisations; nt's flow runs at learning_rate / n in its units
        out["ntk_ensemble_mean"] = np.stack([
            _ensemble_mean(theta_tt, theta_st, y_train, steps, float(h) / n) if np.isfinite(h)
            else np.full(fT.shape[1:], np.nan) for h in np.asarray(res["step_size"])])  # a dead network: no step
    out["f_T"] = fT
    for k in ("linearisation_distance", "ntk_change", "ntk_prediction_error"):
        out[k] = np.where(dead | diverged, np.nan, out[k])
    return out


@float64
def _ensemble_mean(theta_tt, theta_st, y_train, t, learning_rate) -> np.ndarray:
    from ..gp import ntk_ensemble_predict

    post = ntk_ensemble_predict(theta_tt, theta_st, y_train, t=float(t), learning_rate=learning_rate)
    return np.asarray(post.mean, dtype=float)


def _ensemble_distance(m: dict, live) -> float:
    """``|mean_i f_T,i - mean_i mu_i| / |mean_i mu_i|`` over the live networks, ``mu_i`` the NTK ensemble's mean at
    network i's step size: the ensemble of finite networks against the infinite one (NaN without a reference)."""
    if "ntk_ensemble_mean" not in m or live.sum() < 2:
        return float("nan")
    mu = m["ntk_ensemble_mean"][live].mean(axis=0)
    return float(np.linalg.norm(m["f_T"][live].mean(axis=0) - mu) / np.linalg.norm(mu))


def _rel(diff, ref) -> np.ndarray:
    """Per-initialisation relative norm ``|diff| / |ref|`` over the test points, ``(num_inits,)``."""
    k = diff.shape[0]
    return np.linalg.norm(diff.reshape(k, -1), axis=1) / np.linalg.norm(ref.reshape(k, -1), axis=1)


def _slope(widths, means, ses) -> tuple[float, float]:
    """Least-squares slope of log(mean) on log(width) and its standard error (delta method: the log of a mean
    has standard error se/mean; weighted propagation through the fixed design)."""
    lw, lm = np.log(np.asarray(widths, float)), np.log(np.asarray(means, float))
    if len(lw) < 2 or not np.all(np.isfinite(lm)):
        return float("nan"), float("nan")
    c = lw - lw.mean()
    weights = c / np.sum(c**2)
    slope = float(weights @ lm)
    se = float(np.sqrt(np.sum((weights * np.asarray(ses, float) / np.asarray(means, float)) ** 2)))
    return slope, se


def lazy_training(key, prior_name: str, widths, settings: LazySettings | None = None, *, hyper=None,
                  log=None, progress=None) -> dict:
    """:func:`measure_width` at every width (the same toy problem, independent initialisations): per width the
    mean of each measurement over the initialisations and its standard error (sd / sqrt(K)), the log-log slopes
    against width, and the NTK's spread at initialisation.  Networks with no live node (``dead_networks``, per
    width) and networks whose training diverged (``diverged_networks``) are left out of the means: both counts
    are part of the answer.  Keys as the ``lazy`` command prints them.  ``progress``: wraps the
    iteration over widths (a progress bar)."""
    settings = settings or LazySettings()
    check_choice("prior", prior_name, PRIOR_NAMES)
    widths = [check_int("width", w, minimum=1) for w in widths]
    if not widths:
        raise InputError("widths must hold at least one width")
    k_data, k_nets = jax.random.split(key)
    data = toy_problem(k_data, settings.n_train, settings.n_test, settings.input_dim)
    names = ("linearisation_distance", "ntk_change", "ntk_prediction_error")
    means = {k: [] for k in names}
    ses = {k: [] for k in names}
    spread, spread_se, seconds, dead, diverged, ensemble = [], [], [], [], [], []
    for i, width in enumerate(progress(widths) if progress is not None else widths):
        t0 = time.perf_counter()
        m = measure_width(jax.random.fold_in(k_nets, i), prior_name, width, settings, data=data, hyper=hyper)
        seconds.append(time.perf_counter() - t0)
        dead.append(int(m["dead"].sum()))
        diverged.append(int(m["diverged"].sum()))
        for k in names:
            v = m[k][~(m["dead"] | m["diverged"])]
            ok = v.size >= 2 and np.all(np.isfinite(v))
            means[k].append(float(np.mean(v)) if ok else float("nan"))
            ses[k].append(float(np.std(v, ddof=1) / math.sqrt(v.size)) if ok else float("nan"))
        ensemble.append(_ensemble_distance(m, ~(m["dead"] | m["diverged"])))
        tr = m["ntk_init_trace"]
        cv = float(np.std(tr, ddof=1) / np.mean(tr))
        spread.append(cv)
        spread_se.append(cv / math.sqrt(2 * (len(tr) - 1)))  # normal-theory SE of a coefficient of variation
        if log is not None:
            log(f"lazy: {prior_name} width {width}: linearisation distance {means[names[0]][-1]:.4g}, "
                f"NTK change {means[names[1]][-1]:.4g} ({seconds[-1]:.1f} s)")
    slope, slope_se = _slope(widths, means["linearisation_distance"], ses["linearisation_distance"])
    slope_ntk, slope_ntk_se = _slope(widths, means["ntk_change"], ses["ntk_change"])
    slope_pred, slope_pred_se = _slope(widths, means["ntk_prediction_error"], ses["ntk_prediction_error"])
    _, label = reference_ntk(prior_name, widths[0], settings, **dict(hyper or {}))
    prior = get_prior(prior_name, widths[0], **dict(hyper or {}))
    return {"prior": prior_name, "regime": prior.limit.regime, "widths": widths, **means,
            "slope": slope, "slope_ntk_change": slope_ntk, "slope_ntk_prediction_error": slope_pred,
            "ntk_init_spread": spread, "ntk_ensemble_mean_distance": ensemble, "ntk_reference": label,
            "stderr": {**ses, "slope": slope_se, "slope_ntk_change": slope_ntk_se,
                       "slope_ntk_prediction_error": slope_pred_se, "ntk_init_spread": spread_se},
            "dead_networks": dead, "diverged_networks": diverged, "seconds_per_width": seconds, "settings": asdict(settings)}


#: flops per second of the training loops and Jacobians on 2 CPU cores (measured: about 2.5e10 at depth 2, width
#: 1024, float64; rounded down, so that the estimate errs long)
FLOP_RATE = 1e10
#: compilation per width (seconds, measured: 2-6 s on 2 cores)
COMPILE_SECONDS = 5.0


def estimate_bytes(widths, settings: LazySettings) -> float:
    """Peak memory of :func:`measure_width` at the largest width: the weights of all initialisations (float32)
    and one network's Jacobian on the training inputs (the empirical NTK), a few copies each."""
    w = max(int(v) for v in widths)
    dims = [settings.input_dim] + [w] * settings.depth + [1]
    weights = sum(a * b for a, b in zip(dims[:-1], dims[1:]))
    return 4.0 * weights * (3 * settings.num_inits + 3 * settings.n_train)


def estimate_seconds(widths, settings: LazySettings) -> float:
    """Seconds that :func:`lazy_training` should take: per width and initialisation, the forward and backward
    passes of the network and of its linearisation (about 3 and 5 passes of 2 flops per weight and point) for
    ``steps`` steps on the training inputs, two empirical NTKs (a Jacobian: about n passes), and compilation."""
    total = 0.0
    for w in widths:
        dims = [settings.input_dim] + [int(w)] * settings.depth + [1]
        weights = sum(a * b for a, b in zip(dims[:-1], dims[1:]))
        per_init = 2 * weights * settings.n_train * (8 * settings.steps + 4 * settings.n_train)
        total += settings.num_inits * per_init / FLOP_RATE + COMPILE_SECONDS
    return total
