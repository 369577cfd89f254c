r"""MoGP regression and classification as a product: ``fit(key, data) -> MoGPPosterior``.

>>> import jax, bayes_mogp
>>> from bayes_mogp import mogp
>>> post = mogp.fit(jax.random.key(0), x_train, y_train, prior="horseshoe", depth=1, num_jumps=8)
>>> pred = post.predict(x_new)                 # bayes_mogp.prediction.Prediction, user units
>>> post.score(x_test, y_test)                 # {"n", "rmse", "nll", "coverage_90"}
>>> post.feature_directions()                  # depth 1: the learned directions w_j in input space
>>> post.save("runs/teacher"); bayes_mogp.load("runs/teacher").predict(x_new)

The model is :mod:`.model` (random kernel = GP part + the J largest jumps of the prior's Levy measure
with their features), its features are functions of the input (:mod:`.features`: input-space weights
with a bias at depth 1, a Nystrom map deeper), so a saved posterior predicts any new input; the
predictive is the mixture over posterior draws of exact GP predictions (:mod:`.predictive`).

Data (:class:`bayes_mogp.data.Dataset`): inputs standardised (or the per-image transform of MNIST),
regression targets standardised and every prediction reported in the user's units; classification
by regression on one-hot targets minus 1/C, with class probabilities from the Gaussian predictive.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property

import jax
import numpy as np

from ..data import InputTransform, as_dataset
from ..numerics import float64
from ..posterior import FitRecord, Posterior, stats_from_arviz, stats_to_arviz
from ..prediction import Prediction
from ..validation import check_int
from .features import FeatureMap, build_feature_map
from .likelihood import without_rotation
from .model import build_problem, fit_map, model_kwargs, run_nuts
from .predictive import class_probabilities, draw_predictor, loo_draws, predict_draws, test_inputs
from .settings import MoGPSettings
from ..errors import InputError, InputTypeError

__all__ = ["fit", "MoGPPosterior", "MoGPSettings", "pruned_sizes", "kernel_weights",
           "HOMOGENEOUS_ACTIVATIONS"]

#: what the data identify: the log-likelihood, the GP part's scale sigma_v^2 (a + R), the noise and the sorted
#: kernel weights of the features (:func:`kernel_weights`); R-hat is targeted on these (and test predictions)
_IDENT = ("log_marginal_likelihood", "gp_scale", "noise", "kernel_weights")
#: the raw scales and jumps: the likelihood depends on them only through the quantities above, so they move
#: along ridges the prior alone shapes; their R-hat is reported, not targeted
_UNIDENTIFIED = ("sigma_v2", "drift", "jumps")
#: feature activations with phi(c h) = c phi(h) for c > 0: a feature's length trades off against its jump
HOMOGENEOUS_ACTIVATIONS = ("relu", "abs", "identity")
#: computed from the draws for the InferenceData, never stored as draws
_DERIVED = ("kernel_weights",)


def kernel_weights(samples: dict, activation: str) -> np.ndarray | None:
    r"""Each draw's kernel weights of its J features, largest first, ``(..., J)`` (None without jumps).

    The random kernel is :math:`\sigma_v^2[(a + R)K_\phi + \sum_j \lambda_j \phi(Bu_j)\phi(Bu_j)^\top]`.
    For a positively homogeneous :math:`\phi` (:data:`HOMOGENEOUS_ACTIVATIONS`),
    :math:`\phi(Bu_j)\phi(Bu_j)^\top = |u_j|^2 \phi(B\hat u_j)\phi(B\hat u_j)^\top`, so the data see
    :math:`w_j = \sigma_v^2\lambda_j|u_j|^2` and the direction :math:`\hat u_j`, never :math:`\lambda_j`,
    :math:`|u_j|` or :math:`\sigma_v^2` apart; for other activations :math:`w_j = \sigma_v^2\lambda_j`.  Sorted
    within each draw, so that chains whose features swap places agree."""
    if "jumps" not in samples or "features" not in samples:
        return None
    w = np.asarray(samples["jumps"]) * np.asarray(samples["sigma_v2"])[..., None]
    if activation in HOMOGENEOUS_ACTIVATIONS:
        w = w * np.sum(np.square(np.asarray(samples["features"])), axis=-1)
    return -np.sort(-w, axis=-1)


def pruned_sizes(num_jumps: int) -> list[int]:
    """The numbers of largest jumps kept by the pruned networks :meth:`MoGPPosterior.evaluate` scores: 1, J/2
    and J (without repeats)."""
    return sorted({1, max(1, num_jumps // 2), num_jumps})


def _limit(prior, hyper):
    from ..priors import get_prior

    if isinstance(prior, str):
        return get_prior(prior, 1000, **dict(hyper or {})).limit  # the width is irrelevant: the limit is used
    if hasattr(prior, "limit"):
        return prior.limit
    raise InputTypeError(f"prior must be a prior name (bayes_mogp.priors.PRIOR_NAMES) or a NodeVariancePrior, "
                         f"got {type(prior).__name__}")


@float64
def fit(key, data, y=None, *, settings: MoGPSettings | None = None, log=None, progress: bool = False,
        **overrides) -> "MoGPPosterior":
    """Fit the MoGP posterior to ``data`` (a :class:`Dataset`, or arrays ``x``, ``y``).

    ``settings``: a :class:`MoGPSettings` (default: its defaults), with ``overrides`` by field name on top
    (``fit(key, x, y, prior="beta", num_jumps=4)``); the posterior keeps the resolved record.  ``key``: a
    JAX PRNG key (same key, same posterior).  ``log``: a callable for progress lines; ``progress``: NumPyro's
    progress bar.  Runs in float64 (:func:`bayes_mogp.numerics.float64`) whatever the caller's JAX setting.
    """
    if isinstance(y, MoGPSettings):
        raise InputTypeError("y is a MoGPSettings: pass the record by name, fit(key, data, settings=...)")
    if settings is not None and not isinstance(settings, MoGPSettings):
        raise InputTypeError(f"settings must be a MoGPSettings (or None), got {type(settings).__name__}")
    s = (settings or MoGPSettings()).replace(**overrides)
    data = as_dataset(data, y)
    if s.b_var is None:
        s = s.replace(b_var=1.0 if data.input_transform.kind == "standardize" else 0.0)
    limit = _limit(s.prior, s.prior_hyper)
    x, yt = data.inputs(), data.targets()
    t0 = time.perf_counter()
    fmap = build_feature_map(x, depth=s.depth, rank=s.rank, activation=s.activation, w_var=s.w_var, b_var=s.b_var)
    problem = build_problem(fmap, x, yt, rotation_dtype=s.rotation_dtype)
    kw = model_kwargs(problem, limit, s.num_jumps, drift=s.drift, noise_floor=s.noise_floor)
    k_map, k_nuts = jax.random.split(key)
    record: dict = {}
    if s.sampler == "smc":
        t_smc = time.perf_counter()
        samples, stats, record = _run_smc(k_nuts, kw, s, log)
        timings = {"smc_seconds": time.perf_counter() - t_smc}
    else:  # NUTS or parallel tempering, from the MAP
        if log:
            log(f"mogp: MAP ({s.map_steps} steps), n = {data.n_train}, rank {fmap.rank}, J = {kw['num_jumps']}")
        params, _ = fit_map(k_map, kw, steps=s.map_steps)
        t_map = time.perf_counter() - t0
    if s.sampler == "pt":
        samples, stats, record = _run_pt(k_nuts, kw, params, s, log)
        timings = {"map_seconds": t_map, "pt_seconds": time.perf_counter() - t0 - t_map}
    elif s.sampler == "nuts":
        if log:
            log(f"mogp: NUTS {s.num_chains} x ({s.num_warmup} + {s.num_samples})")
        res = run_nuts(k_nuts, kw, num_warmup=s.num_warmup, num_samples=s.num_samples, num_chains=s.num_chains,
                       init_params=params, max_tree_depth=s.max_tree_depth,
                       warmup_tree_depth=s.warmup_tree_depth, target_accept_prob=s.target_accept_prob,
                       dense_mass=s.dense_mass, chain_method=s.chain_method, chain_selection=s.chain_selection,
                       progress_bar=progress)
        samples, stats = res.samples, res.stats
        if "chain_selection" in res.settings:
            record = {"chain_selection": res.settings["chain_selection"]}
        timings = {"map_seconds": t_map, "nuts_seconds": time.perf_counter() - t0 - t_map}
    seconds = time.perf_counter() - t0
    post = MoGPPosterior(settings=s.replace(rank=fmap.rank), feature_map=fmap, x_train=np.asarray(x), y_train=np.asarray(yt),
                         samples=samples, stats=stats, data_info=data.describe(), input_transform=data.input_transform,
                         target_transform=data.target_transform, task=data.task, num_classes=data.num_classes,
                         timings={"seconds": seconds, **timings}, sampler_record=record)
    # the cached_property values, computed here already; prediction and LOO rotate in float64 with the eigenvectors
    # themselves, so the sampler's copies of the eigenbasis are not kept with the posterior (as for a loaded one)
    post.__dict__.update(limit=limit, problem=problem._replace(base=without_rotation(problem.base)))
    return post


def _run_smc(key, kw: dict, s: MoGPSettings, log):
    """``s.num_chains`` independent tempered SMC runs (:mod:`.smc`): their draws (run, particle, ...), the
    stats and the runs' record (log evidence and its standard error, tempering steps, particle ESS,
    acceptance).  No MAP: SMC starts from the prior."""
    from .smc import SMCConfig, evidence_summary, sample

    cfg = SMCConfig(num_particles=s.smc_particles, target_ess=s.smc_target_ess, num_mcmc_steps=s.smc_moves,
                    num_leapfrog=s.smc_leapfrog)
    if log:
        log(f"mogp: SMC {s.num_chains} runs x {s.smc_particles} particles, {s.smc_moves} HMC moves x "
            f"{s.smc_leapfrog} leapfrog steps per tempering step")
    res = sample(key, kw, num_runs=s.num_chains, config=cfg)
    runs = res.runs
    record = {"sampler": "smc", **evidence_summary(res), "tempering_steps": [int(v) for v in runs.num_steps],
              "particle_ess": [float(v) for v in runs.ess], "unique_particles": [int(v) for v in runs.unique],
              "mean_acceptance": float(np.nanmean(runs.acceptance)),
              "final_acceptance": [float(v) for v in runs.final_acceptance],
              "gradient_evaluations": int(res.gradient_evaluations)}
    stats = {"diverging": np.zeros((s.num_chains, s.smc_particles), dtype=bool)}
    return res.samples, stats, record


def _run_pt(key, kw: dict, params: dict, s: MoGPSettings, log):
    """Parallel tempering (:mod:`.tempering`) of ``s.num_chains`` chains from the MAP point ``params``: the draws of
    the beta = 1 replicas (chain, draw, ...), the stats and the record (ladder, swap and HMC acceptance, round
    trips, gradient evaluations)."""
    from .tempering import PTConfig, flat_point, sample

    cfg = PTConfig(num_temperatures=s.pt_temperatures, beta_min=s.pt_beta_min, num_leapfrog=s.pt_leapfrog,
                   num_warmup=s.num_warmup, num_samples=s.num_samples, target_accept=s.target_accept_prob)
    if log:
        log(f"mogp: parallel tempering, {s.num_chains} chains x {s.pt_temperatures} temperatures (beta down to "
            f"{s.pt_beta_min}), HMC moves of {s.pt_leapfrog} leapfrog steps, {s.num_warmup} + {s.num_samples}")
    res = sample(key, kw, flat_point(kw, params), num_chains=s.num_chains, config=cfg, log=log)
    record = {"sampler": "pt", "betas": res.betas.tolist(), "swap_acceptance": res.swap_acceptance.tolist(),
              "hmc_acceptance": res.hmc_acceptance.tolist(), "round_trips": res.round_trips.tolist(),
              "round_trips_warmup": res.round_trips_warmup.tolist(), "step_size": res.step_size.tolist(),
              "gradient_evaluations": int(res.gradient_evaluations)}
    stats = {"diverging": np.zeros(res.log_likelihood.shape[:2], dtype=bool)}
    return res.samples, stats, record


@dataclass(frozen=True, eq=False, repr=False)
class MoGPPosterior(FitRecord, Posterior):
    """Posterior draws of the random kernel and everything needed to predict new inputs.

    ``samples``/``stats``: ``(chain, draw, ...)`` arrays (NumPyro's statistic names; for SMC the chains are the
    independent runs and the draws their equally weighted final particles); ``x_train``/``y_train`` in the model's
    units; ``settings``: the :class:`MoGPSettings` of the fit (resolved: ``b_var``, ``rank``);
    ``sampler_record``: what the sampler reports beyond the draws (SMC: the log evidence and its standard error
    across runs, tempering steps, particle ESS; parallel tempering: the ladder, swap and HMC acceptance, round
    trips; NUTS: ``chain_selection`` with ``chain_selection="best"``, else empty).
    """

    settings: MoGPSettings
    feature_map: FeatureMap
    x_train: np.ndarray
    y_train: np.ndarray
    samples: dict
    stats: dict
    sampler_record: dict = field(default_factory=dict)
    kind = "mogp"
    diagnostic_vars = _IDENT
    unidentified_vars = _UNIDENTIFIED

    # -- cached pieces -------------------------------------------------------------------------------
    @cached_property
    def limit(self):
        """The prior's infinite-width limit (drift, Levy measure)."""
        return _limit(self.settings.prior, self.settings.prior_hyper)

    @cached_property
    def problem(self):
        """The training problem (feature basis, eigendecomposition) the draws condition on; prediction and
        leave-one-out rotate in float64, so no float32 copy of the eigenbasis is kept."""
        with jax.enable_x64(True):
            return build_problem(self.feature_map, self.x_train, self.y_train, rotation_dtype="float64")

    @property
    def prior_name(self) -> str:
        return self.settings.prior_name

    @property
    def method(self) -> str:
        """The sampler that made the draws ("nuts", "smc" or "pt"): the report's diagnostic rule follows it."""
        return self.settings.sampler

    @property
    def num_chains(self) -> int:
        return int(next(iter(self.samples.values())).shape[0])

    @property
    def num_draws(self) -> int:
        return int(next(iter(self.samples.values())).shape[1])

    def flat_samples(self) -> dict:
        return {k: v.reshape((-1,) + v.shape[2:]) for k, v in self.samples.items()}

    @cached_property
    def _derived(self) -> dict:
        """The identified quantities computed from the draws (``kernel_weights``), ``(chain, draw, ...)``."""
        w = kernel_weights(self.samples, self.feature_map.activation)
        return {} if w is None else {"kernel_weights": w}

    # -- prediction ------------------------------------------------------------------------------------
    @float64
    def predict_components(self, x, *, keep: int | None = None, gp_part: bool = True, tests=None):
        """Per-draw mean (S, m, k), latent variance (S, m), noise (S,) at inputs ``x`` (user units), model units.
        ``tests``: :meth:`test_inputs` of ``x``, if already computed (it does not depend on the draws)."""
        if keep is not None:
            keep = check_int("keep", keep, minimum=1)
        tests = self.test_inputs(x) if tests is None else tests
        return predict_draws(self.problem, tests, self.limit, self.flat_samples(), drift=self.settings.drift,
                             keep=keep, gp_part=gp_part, predictor=self._predictor)

    @cached_property
    def _predictor(self):
        """The compiled per-draw prediction, kept with the posterior: later calls with inputs of the same shape
        (any ``keep``, ``gp_part``) reuse it."""
        with jax.enable_x64(True):
            return draw_predictor(self.problem, self.limit, drift=self.settings.drift)

    @float64
    def test_inputs(self, x):
        """The base kernel between the training inputs and ``x`` (user units), rotated, and the feature basis at
        ``x``: the part of a prediction that every draw and every ``keep`` share."""
        xm = self.input_transform(self.check_inputs(x))
        return test_inputs(self.problem, self.feature_map, self.x_train, xm)

    def predict(self, x, *, keep: int | None = None, gp_part: bool = True) -> Prediction:
        """Predictive distribution at ``x`` (m, d) in the user's units (module docstring of :mod:`.predictive`).

        ``keep=k, gp_part=False``: the pruned network of the k largest jumps.
        """
        means, var, noise = self.predict_components(x, keep=keep, gp_part=gp_part)
        return self.prediction_from_components(means, var, noise)

    @float64
    def chain_class_probabilities(self, means, var, noise) -> np.ndarray:
        """Classification: each chain's mixture class probabilities (chains, m, C) from per-draw components of
        all the posterior's draws (chain-major, as :meth:`predict_components` returns them); components of any
        other number of draws are one group, (1, m, C).  The posterior's probabilities are their mean."""
        total = means.shape[0]
        nc = self.num_chains if total == self.num_chains * self.num_draws else 1
        nd = total // nc
        return np.stack([class_probabilities(means[c * nd:(c + 1) * nd], var[c * nd:(c + 1) * nd],
                                             noise[c * nd:(c + 1) * nd]) for c in range(nc)])

    @float64
    def prediction_from_components(self, means, var, noise, *, chain_probs=None) -> Prediction:
        """The :class:`Prediction` of per-draw components ((S, m, k) means, (S, m) latent variances, (S,) noises).
        ``chain_probs``: :meth:`chain_class_probabilities` of the same components, if already computed (the
        quadrature is most of a classification's prediction time)."""
        sd = np.sqrt(var + noise[:, None])[:, :, None] * np.ones(means.shape[-1])
        if self.task == "regression":
            t = self.target_transform
            return Prediction("regression", t.inverse_mean(means), t.inverse_scale(sd))
        if chain_probs is None:
            chain_probs = self.chain_class_probabilities(means, var, noise)
        return Prediction("classification", means, sd, probs=np.mean(chain_probs, axis=0))

    def evaluate(self, x, targets, *, components=None, chain_probs=None) -> dict:
        """:meth:`score` plus the pruned network's score keeping the 1, J/2 and J largest jumps (no GP part).
        ``components``: the output of :meth:`predict_components` at ``x``, if already computed;
        ``chain_probs``: their :meth:`chain_class_probabilities`, likewise."""
        from ..metrics import score

        tests = self.test_inputs(x)
        out = score(self.prediction_from_components(*(components or self.predict_components(x, tests=tests)),
                                                    chain_probs=chain_probs), targets)
        if "features" in self.samples:
            j = self.samples["features"].shape[2]
            metric = "accuracy" if self.task == "classification" else "rmse"
            pruned = {k: self.predict_components(x, keep=k, gp_part=False, tests=tests)
                      for k in pruned_sizes(j)}
            out[f"pruned_{metric}"] = {str(k): score(self.prediction_from_components(*c), targets)[metric]
                                       for k, c in pruned.items()}
        return out

    # -- what the posterior learned ----------------------------------------------------------------------
    def active_features(self) -> dict | None:
        """Posterior medians of the kernel weights :math:`\\sigma_v^2\\lambda_j` and of their share of the
        kernel's scale, and the number of features whose median share exceeds 1%."""
        if "jumps" not in self.samples:
            return None
        f = self.flat_samples()
        lam = f["jumps"] * f["sigma_v2"][:, None]
        share = lam / (lam.sum(1, keepdims=True) + f["gp_scale"][:, None])
        return {"num_jumps": int(lam.shape[1]), "lambda_median": np.median(lam, 0),
                "kernel_share_median": np.median(share, 0), "active": int(np.sum(np.median(share, 0) > 0.01)),
                "trace_kept_by_rank": self.feature_map.trace_kept}

    def feature_weights(self):
        """Depth 1: input-space weights (S, J, d) and biases (S, J) of every draw's features, model units."""
        return self.feature_map.weights(self.flat_samples()["features"])

    def feature_directions(self) -> dict:
        r"""Depth 1: for each jump j (ordered by size), the posterior mean of the unit direction
        :math:`w_j/|w_j|` in the model's (standardised) input space (``directions``) and the same directions
        in the user's input units (``directions_input_units``: :math:`w_j / s` elementwise, normalised, since
        :math:`w\cdot\tilde x = (w / s)\cdot x + \text{const}`), the length of the mean unit vector
        (``concentration``: 1 when every draw agrees, 0 without a consistent direction), the median bias and
        the median kernel weight :math:`\sigma_v^2 \lambda_j`."""
        w, b = self.feature_weights()
        unit = w / np.linalg.norm(w, axis=-1, keepdims=True).clip(1e-300)
        mean = unit.mean(0)
        f = self.flat_samples()
        lam = np.median(f["jumps"] * f["sigma_v2"][:, None], 0)
        directions = mean / np.linalg.norm(mean, axis=-1, keepdims=True).clip(1e-300)
        user = directions
        if self.input_transform.kind == "standardize":
            user = directions / self.input_transform.scale
            user = user / np.linalg.norm(user, axis=-1, keepdims=True).clip(1e-300)
        return {"directions": directions, "directions_input_units": user,
                "concentration": np.linalg.norm(mean, axis=-1), "bias_median": np.median(b, 0),
                "lambda_median": lam}

    def teacher_cosines(self, teacher_w, *, top: int | None = None) -> np.ndarray:
        """For each teacher direction (rows of ``teacher_w`` (K, d), user input units), the posterior mean over
        draws of the largest :math:`|\\cos|` with the draw's ``top`` largest features (default all J).

        The teacher's weights are mapped to the model's standardised inputs first
        (:math:`w\\cdot x = (w \\odot s)\\cdot\\tilde x + \\text{const}`)."""
        t = np.atleast_2d(np.asarray(teacher_w, dtype=np.float64))
        if self.input_transform.kind == "standardize":
            t = t * self.input_transform.scale
        t = t / np.linalg.norm(t, axis=1, keepdims=True)
        w, _ = self.feature_weights()
        w = w[:, :top] if top else w
        w = w / np.linalg.norm(w, axis=-1, keepdims=True).clip(1e-300)
        cos = np.abs(np.einsum("sjd,kd->skj", w, t))  # (S, K, J)
        return cos.max(-1).mean(0)

    # -- diagnostics ---------------------------------------------------------------------------------------
    def diagnostics(self, x=None, targets=None, *, components=None, chain_probs=None) -> dict:
        """R-hat (max) and bulk ESS (min) over the identified quantities (log-likelihood, the GP part's scale,
        the noise, the sorted kernel weights :func:`kernel_weights`; and five test predictions when ``x`` is
        given), each quantity's R-hat (``r_hat_by_quantity``), the R-hat of the raw scales and jumps, which the
        data do not identify (``r_hat_unidentified_max``: reported, not targeted), divergences, leapfrog steps,
        and what each chain says on its own (mean log-likelihood; its own predictive's accuracy or RMSE).
        ``components``: the output of :meth:`predict_components` at ``x``, if already computed;
        ``chain_probs``: their :meth:`chain_class_probabilities`, likewise."""
        import arviz as az

        from ..metrics import score
        from ..report import worst_rhat

        nc, nd = self.num_chains, self.num_draws
        found = {**self.samples, **self._derived}
        ident = {k: found[k] for k in self.diagnostic_vars if k in found}
        raw = {k: found[k] for k in self.unidentified_vars if k in found}
        per_chain = {"log_likelihood_mean": [float(v) for v in self.samples["log_marginal_likelihood"].mean(1)]}
        if x is not None or components is not None:
            means, var, noise = components if components is not None else self.predict_components(x)
            chain_means = means.reshape(nc, nd, *means.shape[1:])
            ident["test_prediction"] = chain_means[:, :, :5, 0]
            if targets is not None:
                metric = "accuracy" if self.task == "classification" else "rmse"
                per_chain[metric] = []
                if self.task == "classification" and chain_probs is None:
                    chain_probs = self.chain_class_probabilities(means, var, noise)
                for c in range(nc):
                    sl = slice(c * nd, (c + 1) * nd)
                    cp = None if chain_probs is None else chain_probs[c:c + 1]
                    per_chain[metric].append(score(self.prediction_from_components(means[sl], var[sl], noise[sl],
                                                                                   chain_probs=cp), targets)[metric])
        ds = az.convert_to_dataset(ident)
        rhat = az.rhat(ds) if nc > 1 else None
        ess = az.ess(ds, method="bulk")
        by = {v: float(rhat[v].max()) for v in rhat.data_vars} if rhat is not None else None
        return {"r_hat_max": max(by.values()) if by is not None else None,
                "r_hat_by_quantity": by,
                "r_hat_unidentified_max": worst_rhat(raw, list(raw)) if nc > 1 and raw else None,
                "ess_bulk_min": float(min(float(ess[v].min()) for v in ess.data_vars)),
                "divergences": int(np.sum(self.stats.get("diverging", 0))),
                "mean_leapfrog_steps": float(np.mean(self.stats["num_steps"]))
                if "num_steps" in self.stats else None,
                "quantities": sorted(ident), "per_chain": per_chain,
                **({self.settings.sampler: dict(self.sampler_record)} if self.settings.sampler in ("smc", "pt")
                   else {}),
                **({"chain_selection": self.sampler_record["chain_selection"]}
                   if "chain_selection" in self.sampler_record else {})}

    @cached_property
    def _pointwise_loo(self) -> np.ndarray:
        with jax.enable_x64(True):
            loo = loo_draws(self.problem, self.limit, self.flat_samples(), drift=self.settings.drift)
        return self.to_user_log_density(loo).reshape(self.num_chains, self.num_draws, -1)

    def pointwise_loo(self) -> np.ndarray:
        r"""(chains, draws, n): :math:`\log p(y_i \mid y_{-i}, \theta_s)` for every draw and training point, in
        the user's units (regression: minus :math:`\sum_k \log s_k` of the target scaling).  These are the
        pointwise terms ArviZ's PSIS-LOO needs for a GP with its function values integrated out (the
        InferenceData's ``log_likelihood`` group), computed exactly (O(n^2 J) per draw), once."""
        return self._pointwise_loo

    # -- ArviZ and run folders ------------------------------------------------------------------------------
    def to_inference_data(self):
        """ArviZ InferenceData: ``posterior`` (every sampled and deterministic site, ``(chain, draw, ...)``, and the
        sorted kernel weights :func:`kernel_weights`), ``sample_stats`` (``diverging``, ``n_steps``),
        ``log_likelihood`` (``y``: :meth:`pointwise_loo`, so that
        ``arviz.loo`` is the leave-one-out of this model) and ``observed_data`` (the training targets in the
        user's units, or labels)."""
        import arviz as az

        dims = {"jumps": ["jump"], "arrivals": ["jump"], "features": ["jump", "latent"], "kernel_weights": ["jump"]}
        return az.from_dict(posterior={**self.samples, **self._derived}, sample_stats=stats_to_arviz(self.stats),
                            log_likelihood={"y": self.pointwise_loo()}, observed_data={"y": self.y_observed},
                            dims=dims)

    def save(self, out_dir, *, overwrite: bool = False):
        """:meth:`Posterior.save`; a prior given as an object (not by name) cannot be stored."""
        if not isinstance(self.settings.prior, str):
            raise InputError("save needs a prior given by name (a custom prior object cannot be stored)")
        return super().save(out_dir, overwrite=overwrite)

    def _arrays(self) -> dict:
        from ..runs import task_arrays

        return {"x_train": self.x_train, "y_train": self.y_train, **self.feature_map.to_arrays(),
                **self.input_transform.to_arrays(), **task_arrays(self.task, self.num_classes, self.target_transform)}

    def _manifest_spec(self) -> dict:
        return {**self.settings.to_dict(), "timings": self.timings, "sampler_record": self.sampler_record}

    @classmethod
    def _from_run(cls, spec, a, idata, data_info) -> "MoGPPosterior":
        from ..runs import task_from_arrays

        samples = {k: np.asarray(v.values) for k, v in idata.posterior.data_vars.items() if k not in _DERIVED}
        timings = spec.pop("timings", {})
        record = spec.pop("sampler_record", {})
        if "seconds" not in timings and "map_seconds" in timings:  # runs written before the total was kept
            timings = {**timings, "seconds": timings["map_seconds"] + timings.get("nuts_seconds", 0.0)}
        task, num_classes, target = task_from_arrays(a)
        post = cls(settings=MoGPSettings.from_dict(spec), feature_map=FeatureMap.from_arrays(a), x_train=a["x_train"], y_train=a["y_train"],
                   samples=samples, stats=stats_from_arviz(idata), data_info=data_info,
                   input_transform=InputTransform.from_arrays(a), target_transform=target, task=task,
                   num_classes=num_classes, timings=timings, sampler_record=record)
        check_int("num_draws", post.num_draws, minimum=1)
        return post
