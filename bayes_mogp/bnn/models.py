r"""NumPyro MLP BNNs with per-node random variances (Lee et al. 2023, eq. 1-2).

Network (depth :math:`L` hidden layers of widths :math:`p_1..p_L`, inputs ``X`` of shape ``(n, d_in)``):

.. math::

    h^{(1)} = d_{in}^{-1/2}\, \sigma_v\, X V^{(0)} + b^{(1)}, \qquad
    h^{(l+1)} = \phi(h^{(l)})\, \mathrm{diag}(\sqrt{\lambda^{(l)}})\, \sigma_v V^{(l)} + b^{(l+1)},

with the logits / regression mean :math:`f = h^{(L+1)}` of shape ``(n, k)``.  Every weight is written
*non-centred*, :math:`W = \sqrt{\lambda_j}\, \sigma_v V`, with :math:`V \sim N(0, 1)` sampled (sites
``V0, V1, ...``) and the scale applied deterministically: the funnel between a node's variance and its
outgoing weights is what makes the plain (centred) model hard for NUTS (measured on the MNIST headline:
13 divergences and min ESS 2.6 centred; ``benchmarks/bench_bnn.py``).  The per-node variances :math:`\lambda^{(l)}` (shape ``(p_l,)``) come from a
:class:`~bayes_mogp.priors.NodeVariancePrior` at width :math:`p_l`, which emits its own sites
(:meth:`~bayes_mogp.priors.NodeVariancePrior.sample_site`; the model does not know the family):

* ``horseshoe``: :math:`\lambda_j = \tau^2 U_j^2`, each half-Cauchy in the two-factor form
  :math:`|z|/\sqrt g` (sites ``u{l}_z``, ``u{l}_g``), the global scale :math:`\tau = \tau_0 t` centred on
  the width scaling of model (d), :math:`\tau_0 = \pi / p`, with :math:`t` from the config's
  ``global_scale`` (the prior's ``scale_prior``): half-Cauchy(1) (sites ``tau{l}_z``, ``tau{l}_g``),
  half-normal(1) (``tau{l}_z``: light tails, which the classification headline needs, since separable
  data push a half-Cauchy :math:`\tau` into its tail: see ``models/bnn_horseshoe.toml``) or fixed at 1
  (exactly model (d)); ``slab_scale`` gives the regularised horseshoe (Piironen and Vehtari 2017).
* ``iid``: :math:`\lambda_j = c/p` (no latent variable).
* a prior with discrete support (``bernoulli``): the index site ``lam{l}_index`` is discrete; it is
  sampled by :class:`numpyro.infer.DiscreteHMCGibbs` (Gibbs updates of the gates, NUTS for the rest),
  which :func:`bayes_mogp.bnn.inference.make_kernel` selects.  Enumeration is not an option: the gates
  act jointly on every output, so the enumerated sum has :math:`2^p` terms.
* any other prior (``inverse_gamma``, ``gamma_gp``, ``gamma_mogp``, ``beta``, ``generalized_gamma``,
  user priors): ``lam{l}_raw`` from ``prior.distribution`` (NUTS works on its unconstrained
  transform); the weights stay non-centred.

Deterministic sites recorded for diagnostics (identifiable under the permutation and sign symmetries of
hidden units): ``lam{l}`` (per node), ``lam_sorted{l}`` (decreasing), ``tau{l}`` (horseshoe global
scale).

Likelihoods (``f`` the network output, ``(n, k)``):

* ``"categorical"``: labels :math:`y_i \in \{0..k-1\}`, :math:`p(y_i = c) = \mathrm{softmax}(f_i)_c`;
* ``"gaussian"``: real targets ``y`` ``(n, k)`` (standardised by the caller),
  :math:`y_{ic} \sim N(f_{ic}, \sigma^2)`, one noise scale :math:`\sigma \sim
  \mathrm{HalfNormal}(\text{noise\_scale})` (site ``sigma``) learned with the weights;
* ``"student_t"``: :math:`y_{ic} = f_{ic} + \sigma t_{ic}`, :math:`t_{ic}` Student-t with ``df``
  degrees of freedom (fixed, > 2 so that the predictive variance is finite): robust to outliers.

Precision: the model is written without a dtype; it runs in float32 or float64 as JAX's
``jax_enable_x64`` says (:func:`bayes_mogp.bnn.inference.precision` sets it for one fit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import jax.numpy as jnp
import numpyro
import numpyro.distributions as dist

from .. import networks
from ..activations import get_activation
from ..errors import InputError, InputTypeError
from ..validation import check_choice, check_int, check_positive

__all__ = ["BNNConfig", "bnn_model", "centred_horseshoe_model", "forward", "ACTIVATIONS", "LIKELIHOODS"]

#: the activations a BNN takes: name -> function, from the package's registry (:mod:`bayes_mogp.activations`)
ACTIVATIONS = {name: get_activation(name).fn for name in ("tanh", "relu", "erf")}
LIKELIHOODS = ("categorical", "gaussian", "student_t")
GLOBAL_SCALES = ("half_cauchy", "half_normal", "fixed")


@dataclass(frozen=True)
class BNNConfig:
    """Architecture and prior of a BNN; validated on construction.

    Parameters
    ----------
    d_in, d_out : int
        Input dimension and number of outputs (classes for ``"categorical"``).
    widths : tuple of int
        Hidden widths :math:`p_1, ..., p_L`.
    prior : str or NodeVariancePrior or callable
        Prior family name for :func:`bayes_mogp.priors.get_prior`, or a prior object; one prior object
        is built per hidden layer at its width (a callable ``width -> NodeVariancePrior`` also works).
    prior_hyper : dict
        Hyperparameters passed to ``get_prior``.
    activation : {"tanh", "relu", "erf"}
    likelihood : {"categorical", "gaussian", "student_t"}
    sigma_v, sigma_b : float
        Standard deviations of the standardised weights and of the biases.
    global_scale : {"half_cauchy", "half_normal", "fixed"}
        For a prior given by name whose family takes it (the horseshoe's ``scale_prior``): random global
        scale :math:`\\tau_0 t` with :math:`\\tau_0 = \\pi/p` and ``t`` half-Cauchy(1) or half-normal(1),
        or fixed at :math:`\\tau_0`.  A prior object is used as it is (it carries its own options).
    slab_scale : float or None
        Likewise (the horseshoe's ``slab_scale``): regularised-horseshoe slab (None: no slab).
    noise_scale : float
        Gaussian / Student-t likelihood: scale of the half-normal prior of the noise scale ``sigma``
        (in the units of the targets the model sees: standardised targets for regression).
    df : float
        Student-t likelihood: degrees of freedom, > 2.
    """

    d_in: int
    d_out: int
    widths: tuple = (50,)
    prior: object = "horseshoe"
    prior_hyper: dict = field(default_factory=dict)
    activation: str = "tanh"
    likelihood: str = "categorical"
    sigma_v: float = 1.0
    sigma_b: float = 1.0
    global_scale: str = "half_cauchy"
    slab_scale: float | None = None
    noise_scale: float = 1.0
    df: float = 4.0

    def __post_init__(self):
        check_int("d_in", self.d_in, minimum=1)
        check_int("d_out", self.d_out, minimum=1)
        widths = self.widths if isinstance(self.widths, (tuple, list)) else (self.widths,)
        if len(widths) == 0:
            raise InputError("widths must list at least one hidden width, got []")
        object.__setattr__(self, "widths", tuple(check_int("width", w, minimum=1) for w in widths))
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("likelihood", self.likelihood, LIKELIHOODS)
        check_choice("global_scale", self.global_scale, GLOBAL_SCALES)
        check_positive("sigma_v", self.sigma_v)
        check_positive("sigma_b", self.sigma_b)
        check_positive("noise_scale", self.noise_scale)
        if check_positive("df", self.df) <= 2.0:
            raise InputError(f"df must be > 2 (a Student-t with finite variance), got {self.df}")
        if self.slab_scale is not None:
            check_positive("slab_scale", self.slab_scale)
        # Build the priors now so that an unknown name or bad hyperparameter fails here, not in NUTS.
        object.__setattr__(self, "_priors", tuple(self._make_prior(w) for w in self.widths))

    def _make_prior(self, width):
        if isinstance(self.prior, str):
            from ..priors import get_prior

            hyper = dict(self.prior_hyper)
            prior = get_prior(self.prior, width, **hyper)
            # the families that take a random global scale or a slab get the config's (the horseshoe)
            options = {"scale_prior": self.global_scale, "slab_scale": self.slab_scale}
            extra = {k: v for k, v in options.items() if k in prior.hyper and k not in hyper}
            return get_prior(self.prior, width, **hyper, **extra) if extra else prior
        if callable(self.prior) and not hasattr(self.prior, "distribution"):
            return self.prior(width)
        if hasattr(self.prior, "distribution"):
            return self.prior
        raise InputTypeError(f"prior must be a prior name or a NodeVariancePrior, got {type(self.prior).__name__}")

    @property
    def priors(self):
        """One prior object per hidden layer."""
        return self._priors

    @property
    def prior_name(self) -> str:
        return str(getattr(self.priors[0], "name", "custom"))

    @property
    def has_discrete(self) -> bool:
        """True if some layer's node variance has discrete support (needs DiscreteHMCGibbs)."""
        return any(p.is_discrete for p in self.priors)

    def __hash__(self):  # dict field: hash by identity-free summary (used as a static jit argument)
        return hash((self.d_in, self.d_out, self.widths, repr(self.prior), tuple(sorted(self.prior_hyper.items())),
                     self.activation, self.likelihood, self.sigma_v, self.sigma_b, self.global_scale,
                     self.slab_scale, self.noise_scale, self.df))

    @property
    def task(self) -> str:
        """``"classification"`` for the categorical likelihood, else ``"regression"``."""
        return "classification" if self.likelihood == "categorical" else "regression"


def _node_variances(config: BNNConfig, layer: int):
    """The per-node variances of hidden layer ``layer`` (shape ``(p,)``): the prior emits its own sites
    (:meth:`~bayes_mogp.priors.NodeVariancePrior.sample_site`), under the names this model has always used."""
    lam = config.priors[layer].sample_site(f"lam{layer}", site_names=_site_names(layer))
    numpyro.deterministic(f"lam_sorted{layer}", -jnp.sort(-lam))
    return lam


def _site_names(layer: int) -> dict:
    """Site names of layer ``layer`` by role where they differ from the prior's default ``lam{l}_{role}``
    (``lam{l}_raw``, ``lam{l}_index`` keep it): the horseshoe's factors and global scale."""
    return {"tau": f"tau{layer}", "tau_z": f"tau{layer}_z", "tau_g": f"tau{layer}_g",
            "u_z": f"u{layer}_z", "u_g": f"u{layer}_g"}


def forward(config: BNNConfig, params: dict, X, lam_mask=None):
    """Network output ``(n, d_out)`` for one draw of ``params`` (sites ``V{l}``, ``b{l}``, ``lam{l}``):
    :func:`bayes_mogp.networks.forward` with standardised weights and scale ``sigma_v``.

    ``lam_mask`` (optional) is a tuple of per-layer arrays ``(p_l,)`` multiplied into the variances:
    pruning sets entries to 0.  Pure and jittable; vmap it over draws.
    """
    depth = len(config.widths)
    V = [params[f"V{layer}"] for layer in range(depth + 1)]
    b = [params[f"b{layer}"] for layer in range(depth + 1)]
    lam = [params[f"lam{layer}"] for layer in range(depth)]
    return networks.forward(X, V, lam, b, phi=ACTIVATIONS[config.activation], sigma_v=config.sigma_v,
                            masks=lam_mask)


def bnn_model(config: BNNConfig, X, y=None, likelihood_scale=1.0):
    """The NumPyro model: our non-centred parametrisation (module docstring).  ``y=None`` for prediction.

    ``likelihood_scale`` multiplies the log-likelihood term (:func:`numpyro.handlers.scale` on the observed
    site only): ``N / B`` makes a minibatch of ``B`` of the ``N`` training points an unbiased estimate of
    the full-data log density (the minibatch samplers of :mod:`.sgmcmc`); the prior terms are unscaled."""
    dims = (config.d_in,) + config.widths + (config.d_out,)
    params = {}
    for layer in range(len(dims) - 1):
        shape = (dims[layer], dims[layer + 1])
        params[f"V{layer}"] = numpyro.sample(f"V{layer}", dist.Normal(0.0, 1.0).expand(shape).to_event(2))
        b = numpyro.sample(f"b{layer}_raw", dist.Normal(0.0, 1.0).expand(shape[1:]).to_event(1))
        params[f"b{layer}"] = config.sigma_b * b
    for layer in range(len(config.widths)):
        params[f"lam{layer}"] = _node_variances(config, layer)
    f = forward(config, params, X)
    _likelihood(config, f, y, likelihood_scale)


def _likelihood(config, f, y, likelihood_scale=1.0):
    """The observed site ``y`` (its log-likelihood times ``likelihood_scale``); the noise scale's prior is
    not scaled."""
    if config.likelihood == "categorical":
        obs = dist.Categorical(logits=f)
    else:
        sigma = numpyro.sample("sigma", dist.HalfNormal(config.noise_scale))
        obs = dist.Normal(f, sigma) if config.likelihood == "gaussian" else dist.StudentT(config.df, f, sigma)
        obs = obs.to_event(1)
    with numpyro.handlers.scale(scale=likelihood_scale):
        numpyro.sample("y", obs, obs=y)


def centred_horseshoe_model(config: BNNConfig, X, y=None):
    """The same horseshoe BNN written the plain way (as in NumPyro's BNN example): the benchmark's baseline.

    :math:`\\tau \\sim \\mathrm{HalfCauchy}(\\tau_0)` (or ``HalfNormal(tau_0)``, or fixed, as
    ``config.global_scale`` says), :math:`U_j \\sim \\mathrm{HalfCauchy}(1)` and
    :math:`W_{jk} \\sim N(0, \\tilde\\lambda_j \\sigma_v^2)` sampled directly (centred), with the same slab as
    :func:`bnn_model`; first layer and biases as in :func:`bnn_model`.  Same prior, different geometry.
    """
    from ..priors import HorseshoePrior

    if not all(isinstance(p, HorseshoePrior) for p in config.priors):
        raise InputError(f"centred_horseshoe_model needs prior 'horseshoe', got {config.prior_name!r}")
    act = ACTIVATIONS[config.activation]
    dims = (config.d_in,) + config.widths + (config.d_out,)
    V0 = numpyro.sample("V0", dist.Normal(0.0, 1.0).expand((dims[0], dims[1])).to_event(2))
    b0 = numpyro.sample("b0_raw", dist.Normal(0.0, 1.0).expand((dims[1],)).to_event(1))
    h = networks.input_layer(X, V0, config.sigma_b * b0, scale=config.sigma_v / math.sqrt(config.d_in))
    for layer in range(len(config.widths)):
        p = config.widths[layer]
        prior = config.priors[layer]
        tau0, kind = prior.global_scale, prior.hyper["scale_prior"]
        if kind == "fixed":
            tau = jnp.asarray(tau0)
        elif kind == "half_normal":
            tau = numpyro.sample(f"tau{layer}_c", dist.HalfNormal(tau0))
        else:
            tau = numpyro.sample(f"tau{layer}_c", dist.HalfCauchy(tau0))
        numpyro.deterministic(f"tau{layer}", tau)
        u = numpyro.sample(f"u{layer}_c", dist.HalfCauchy(1.0).expand((p,)).to_event(1))
        lam = prior.slab((tau * u) ** 2)
        numpyro.deterministic(f"lam{layer}", lam)
        numpyro.deterministic(f"lam_sorted{layer}", -jnp.sort(-lam))
        scale = jnp.sqrt(lam)[:, None] * config.sigma_v
        W = numpyro.sample(f"W{layer + 1}", dist.Normal(0.0, scale * jnp.ones((p, dims[layer + 2]))).to_event(2))
        b = numpyro.sample(f"b{layer + 1}_raw", dist.Normal(0.0, 1.0).expand((dims[layer + 2],)).to_event(1))
        h = act(h) @ W + config.sigma_b * b
    _likelihood(config, h, y)
