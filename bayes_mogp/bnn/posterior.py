r"""A fitted BNN: :class:`BNNPosterior` (predict, score, evaluate, prune, ArviZ, save / load).

Prediction at user inputs :math:`x` (``(m, d)``, user units) goes through the fitted input map
(:class:`~bayes_mogp.bnn.inputs.InputMap`) and every posterior draw :math:`s = 1..S`:

* regression (Gaussian likelihood): the mixture :math:`S^{-1}\sum_s N(\mu + s_y f_s(x),\,
  s_y^2\sigma_s^2)` per output, with :math:`\mu, s_y` the target standardisation, so that means,
  scales, intervals and densities are in the user's units (Student-t likelihood: Student-t components
  with the model's ``df``);
* classification: per-draw class probabilities :math:`\mathrm{softmax}(f_s(x))` (``prob_draws``,
  ``(S, m, C)``) and their average (``probs``).

ArviZ (:meth:`BNNPosterior.to_inference_data`): ``posterior`` (every sampled and deterministic site,
``(chain, draw, ...)``, plus two derived quantities used to judge mixing: ``log_lik_total``, the
training log-likelihood, and ``test_pred``, the predictions at up to 50 held-out points: the
probability of the true class, or the predictive mean of the first output in user units),
``sample_stats`` (NUTS, in ArviZ's names), ``log_likelihood`` (``y``: per training point, user units,
for LOO/WAIC), ``posterior_predictive`` (``y``: replicated training targets, one per draw) and
``observed_data``.  Raw weights are not identified (hidden-unit permutations and signs):
:attr:`BNNPosterior.diagnostic_vars` lists the identifiable quantities (sorted per-node variances,
global scales, noise scale, log-likelihood, test predictions).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import jax
import numpy as np

from ..data import TargetTransform
from ..posterior import Posterior, stats_from_arviz, stats_to_arviz
from ..prediction import Prediction
from .inference import precision
from .inputs import InputMap
from .models import BNNConfig
from .prediction import apply_masks, distinct_top_inputs, flatten_chains, forward_draws, prune_masks
from .sgmcmc import MINIBATCH_METHODS

__all__ = ["BNNPosterior", "NUM_DIAG_POINTS", "PRUNE_FRACTIONS"]

NUM_DIAG_POINTS = 50
#: the fractions of nodes pruned in Lee et al. (2023)
PRUNE_FRACTIONS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99)
#: the representation measure's sizes (nodes, and top inputs per node) and the inputs it looks at
TOP_NODES, TOP_INPUTS, TOP_POOL = 30, 30, 5000
_DERIVED = ("log_lik_total", "test_pred")


@dataclass(frozen=True, eq=False, repr=False)
class BNNPosterior(Posterior):
    """Draws of a BNN posterior with everything needed to predict raw inputs (module docstring).

    ``samples``: model sites ``(chains, draws, ...)`` (one chain for SVI); ``stats``: NUTS statistics
    ``(chains, draws)``; ``x_train``/``y_train`` (and ``x_test``/``y_test`` if the data had a test part):
    the data in the user's units; ``spec``: the resolved ``model``/``data``/``inference`` tables and
    ``seed``; ``timings``: seconds; ``losses``: the SVI loss per step, or the minibatch methods' mean
    minibatch log-density estimate per epoch ``(chains, epochs)`` (None for NUTS).
    """

    config: BNNConfig
    samples: dict
    stats: dict
    input_transform: InputMap
    target_transform: TargetTransform | None
    task: str
    num_classes: int | None
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    data_info: dict
    spec: dict
    timings: dict = field(default_factory=dict)
    losses: np.ndarray | None = None
    pruned_fraction: float = 0.0
    kind = "bnn"

    # -- sizes ---------------------------------------------------------------------------------------------
    @property
    def method(self) -> str:
        """``"nuts"``, ``"svi"``, ``"sghmc"``, ``"sgld"``, ``"csgld"``, ``"map"`` or ``"mile"``."""
        return self.spec.get("inference", {}).get("method", "nuts")

    @property
    def prior_name(self) -> str:
        return self.config.prior_name

    @property
    def num_chains(self) -> int:
        return int(self.samples["V0"].shape[0])

    @property
    def num_draws(self) -> int:
        """Draws per chain."""
        return int(self.samples["V0"].shape[1])

    @property
    def dtype(self) -> str:
        return str(np.asarray(self.samples["V0"]).dtype)

    @property
    def test_data(self):
        """``(x_test, y_test)`` of the data the posterior was fitted with, in user units, or None."""
        return None if self.x_test is None or self.y_test is None else (self.x_test, self.y_test)

    def summary(self) -> dict:
        """What was fitted and how: method, prior, task, data, chains, draws, seconds, divergences, dtype."""
        inf = self.spec.get("inference", {})
        out = {"method": self.method, "prior": self.config.prior_name, "likelihood": self.config.likelihood,
               "task": self.task, "data": self.data_info.get("name"), "n_train": int(self.x_train.shape[0]),
               "widths": list(self.config.widths), "chains": self.num_chains, "draws": self.num_draws,
               "seconds": self.timings.get("seconds"), "dtype": self.dtype, "backend": inf.get("backend")}
        if self.method == "nuts":
            out["divergences"] = int(np.sum(self.stats.get("diverging", 0)))
            out["chain_method"] = inf.get("chain_method")
            out["seconds_per_100_draws"] = self.seconds_per_100_draws()
        elif self.method in MINIBATCH_METHODS:
            out.update(epochs=self.timings.get("epochs"), batch_size=inf.get("batch_size"),
                       seconds_per_epoch=self.timings.get("seconds_per_epoch"), noise=inf.get("noise"),
                       final_log_density=float(np.mean(np.asarray(self.losses)[..., -1]))
                       if self.losses is not None else None)
        elif self.method == "mile":
            # a step size read back from ArviZ's sample_stats carries NumPyro's name (adapt_state.step_size)
            step = self.stats.get("step_size", self.stats.get("adapt_state.step_size"))
            out.update(members=self.num_chains, gradient_evaluations=self.timings.get("gradient_evaluations"),
                       unit_metric_members=self.timings.get("unit_metric_members"),
                       step_size=[float(v) for v in np.asarray(step)[:, 0]] if step is not None else None,
                       energy_var=[float(v) for v in np.mean(np.asarray(self.stats["energy_var"]), axis=1)]
                       if "energy_var" in self.stats else None)
        else:
            out.update(guide=inf.get("guide"), num_steps=inf.get("num_steps"),
                       final_loss=float(self.losses[-1]) if self.losses is not None else None)
        return out

    def seconds_per_100_draws(self) -> float | None:
        """Sampling time per 100 draws per chain (all chains together) after warmup and compilation: the
        checkpoint chunks after the first two (the first holds warmup and compilation, the second compiles
        the loop of the chunk size); None with fewer than three chunks."""
        later = (self.timings.get("chunks") or [])[2:]
        draws = sum(d for d, _ in later)
        return 100.0 * sum(t for _, t in later) / draws if draws else None

    def flat_samples(self) -> dict:
        """Every site ``(chains * draws, ...)``."""
        return flatten_chains(self.samples)

    # -- prediction ------------------------------------------------------------------------------------------
    def model_inputs(self, x) -> np.ndarray:
        """The model's inputs for user inputs ``x`` ``(m, d)`` (:meth:`Posterior.check_inputs`, then the fitted
        input map)."""
        return self.input_transform(self.check_inputs(x))

    def outputs(self, x) -> np.ndarray:
        """Network outputs ``(S, m, k)`` (logits or standardised means) of every draw at user inputs ``x``."""
        z = self.model_inputs(x)
        with precision(self.dtype):
            return forward_draws(self.config, self.flat_samples(), z).astype(np.float64)

    def predict(self, x) -> Prediction:
        """The posterior predictive at user inputs ``x`` ``(m, d)`` (module docstring), user units."""
        z = self.model_inputs(x)
        flat = self.flat_samples()
        with precision(self.dtype):
            if self.task == "classification":
                pd = forward_draws(self.config, flat, z, softmax=True)
                return Prediction("classification", probs=pd.astype(np.float64).mean(0), prob_draws=pd)
            f = forward_draws(self.config, flat, z).astype(np.float64)
        tt = self.target_transform
        sigma = np.asarray(flat["sigma"], dtype=np.float64)[:, None, None]
        loc = tt.inverse_mean(f)
        scale = np.broadcast_to(tt.inverse_scale(sigma * np.ones_like(f)), f.shape)
        df = self.config.df if self.config.likelihood == "student_t" else None
        return Prediction("regression", loc=loc, scale=scale, df=df)

    def evaluate(self, x, targets, fractions=PRUNE_FRACTIONS) -> dict:
        """:meth:`score` plus the pruning curve (:meth:`pruning_curve`) at ``fractions`` and, for
        classification, :meth:`distinct_top_images` on the first :data:`TOP_POOL` inputs of ``x``."""
        out = self.score(x, targets)
        out["pruning"] = self.pruning_curve(x, targets, fractions)
        if self.task == "classification":
            out["distinct_top_images"] = self.distinct_top_images(np.asarray(x)[:TOP_POOL])
        return out

    def distinct_top_images(self, x, num_nodes: int = TOP_NODES, num_images: int = TOP_INPUTS) -> float:
        """The representation measure of Lee et al. (2023), :func:`.prediction.distinct_top_inputs`: distinct
        inputs of ``x`` (user units) among the top ``num_images`` of each of the ``num_nodes`` largest-variance
        nodes of the last hidden layer, per chain (draws averaged within a chain), averaged over chains.
        ``num_nodes`` and ``num_images`` are capped at the layer's width and the number of inputs."""
        z = self.model_inputs(x)
        num_nodes = min(int(num_nodes), self.config.widths[-1])
        num_images = min(int(num_images), z.shape[0])
        counts = []
        with precision(self.dtype):
            for c in range(self.num_chains):
                chain = {k: np.asarray(v)[c] for k, v in self.samples.items()}
                counts.append(distinct_top_inputs(self.config, chain, z, num_nodes=num_nodes, num_inputs=num_images))
        return float(np.mean(counts))

    def prune(self, fraction: float) -> "BNNPosterior":
        """The posterior with the ``fraction`` of hidden nodes with the smallest :math:`\\lambda` in each
        draw and layer removed (variance set to 0: their outgoing weights vanish)."""
        masks = prune_masks(self.config, self.flat_samples(), fraction)
        c, d = self.num_chains, self.num_draws
        pruned = apply_masks(self.flat_samples(), masks)
        samples = {k: np.asarray(v).reshape((c, d) + np.shape(v)[1:]) for k, v in pruned.items()}
        return replace(self, samples=samples, pruned_fraction=float(fraction))

    def pruning_curve(self, x, targets, fractions=PRUNE_FRACTIONS) -> dict:
        """Scores of the pruned posteriors: ``{"fraction": [...], <metric>: [...]}`` with accuracy, NLL and
        ECE (classification) or RMSE, NLL and 90% coverage (regression)."""
        keys = ("accuracy", "nll", "ece") if self.task == "classification" else ("rmse", "nll", "coverage_90")
        out = {"fraction": [], **{k: [] for k in keys}}
        for fr in fractions:
            s = self.prune(fr).score(x, targets)
            out["fraction"].append(float(fr))
            for k in keys:
                out[k].append(s[k])
        return out

    # -- ArviZ -------------------------------------------------------------------------------------------------
    @property
    def diagnostic_vars(self) -> list[str]:
        """The identifiable posterior quantities on which mixing is judged (module docstring)."""
        def varies(name):  # a constant (iid variances, a fixed global scale) says nothing about mixing
            return name in self.samples and np.ptp(np.asarray(self.samples[name])) > 0

        names = []
        for layer in range(len(self.config.priors)):
            names += [n for n in (f"lam_sorted{layer}", f"tau{layer}") if varies(n)]
        if "sigma" in self.samples:
            names.append("sigma")
        return names + list(_DERIVED)

    def _train_log_lik(self, f_train):
        """Per-draw, per-point training log-likelihood ``(S, n)`` in user units."""
        from scipy import special, stats

        if self.task == "classification":
            logp = f_train - special.logsumexp(f_train, axis=-1, keepdims=True)
            return np.take_along_axis(logp, self.y_train[None, :, None], -1)[..., 0]
        tt = self.target_transform
        z = (tt(self.y_train)[None] - f_train) / np.asarray(self.flat_samples()["sigma"], np.float64)[:, None, None]
        logpdf = stats.norm.logpdf(z) if self.config.likelihood == "gaussian" else stats.t.logpdf(z, self.config.df)
        sig = np.log(np.asarray(self.flat_samples()["sigma"], np.float64))[:, None, None] + np.log(tt.scale)
        return np.sum(logpdf - sig, axis=-1)

    def _replicates(self, f_train, key):
        """One replicated training target set per draw ``(S, n)`` (labels) or ``(S, n, k)`` (user units),
        drawn with the JAX key ``key``."""
        if self.task == "classification":
            return np.asarray(jax.random.categorical(key, np.asarray(f_train, np.float32), axis=-1))
        sigma = np.asarray(self.flat_samples()["sigma"], np.float64)[:, None, None]
        noise = jax.random.normal(key, f_train.shape) if self.config.likelihood == "gaussian" \
            else jax.random.t(key, self.config.df, f_train.shape)
        return self.target_transform.inverse_mean(f_train + sigma * np.asarray(noise, np.float64))

    @property
    def predictive_key(self):
        """The key of the replicated targets in ``posterior_predictive``: the fit's key folded with 1 (the
        fit's own draws use its splits), so that the same fit gives the same InferenceData."""
        return jax.random.fold_in(jax.random.wrap_key_data(np.asarray(self.spec.get("key", [0, 0]), np.uint32)), 1)

    def _diag_points(self):
        """Up to :data:`NUM_DIAG_POINTS` held-out points with targets (else training points)."""
        if self.test_data is not None:
            x, y = self.test_data
        else:
            x, y = self.x_train, self.y_train
        k = min(NUM_DIAG_POINTS, x.shape[0])
        return x[:k], y[:k]

    def to_inference_data(self):
        """ArviZ InferenceData (module docstring); computed once, then cached (and saved by :meth:`save`)."""
        return self._inference_data

    @cached_property
    def _inference_data(self):
        import arviz as az

        c, d = self.num_chains, self.num_draws
        f_train = self.outputs(self.x_train)
        ll = self._train_log_lik(f_train)
        y_rep = self._replicates(f_train, self.predictive_key)
        xd, yd = self._diag_points()
        pred = self.predict(xd)
        if self.task == "classification":
            test_pred = np.take_along_axis(pred.prob_draws, yd[None, :, None], -1)[..., 0]
        else:
            test_pred = pred.loc[:, :, 0]
        shape = (c, d)
        posterior = {k: np.asarray(v) for k, v in self.samples.items()}
        posterior["log_lik_total"] = ll.sum(-1).reshape(shape)
        posterior["test_pred"] = test_pred.reshape(shape + test_pred.shape[1:])
        stats = stats_to_arviz(self.stats)
        idata = az.from_dict(
            posterior=posterior, sample_stats=stats or None,
            log_likelihood={"y": ll.reshape(shape + ll.shape[1:])},
            posterior_predictive={"y": y_rep.reshape(shape + y_rep.shape[1:])},
            observed_data={"y": self.y_train},
            attrs={"inference": self.method, "pruned_fraction": self.pruned_fraction},
        )
        return idata

    def diagnostics(self) -> dict:
        """:func:`bayes_mogp.report.diagnostics` on :attr:`diagnostic_vars` (MCMC fits), by the rule that applies
        to the method (:func:`bayes_mogp.report.diagnostic_rule`: within each member for MILE)."""
        from ..report import diagnostics

        return diagnostics(self.to_inference_data(), self.diagnostic_vars, self.method)

    # -- run folders -----------------------------------------------------------------------------------------
    def _arrays(self) -> dict:
        from ..runs import task_arrays

        arrays = {"x_train": self.x_train, "y_train": self.y_train, **self.input_transform.to_arrays(),
                  **task_arrays(self.task, self.num_classes, self.target_transform)}
        if self.test_data is not None:
            arrays.update(x_test=self.x_test, y_test=self.y_test)
        if self.losses is not None:
            arrays["losses"] = np.asarray(self.losses)
        return arrays

    def _manifest_spec(self) -> dict:
        from .spec import config_to_model_table

        return {**self.spec, "model": config_to_model_table(self.config), "timings": self.timings,
                "pruned_fraction": self.pruned_fraction}

    @classmethod
    def _from_run(cls, spec, a, idata, data_info) -> "BNNPosterior":
        from ..runs import task_from_arrays
        from .spec import resolve_config

        samples = {k: np.asarray(v.values) for k, v in idata.posterior.data_vars.items() if k not in _DERIVED}
        task, num_classes, target = task_from_arrays(a)
        input_map = InputMap.from_arrays(a)
        d_in = input_map.output_dim(a["x_train"].shape[1])
        d_out = num_classes if task == "classification" else a["y_train"].shape[1]
        config = resolve_config({"model": spec["model"]}, task=task, d_in=d_in, d_out=d_out)
        post = cls(config, samples, stats_from_arviz(idata), input_map, target, task, num_classes, a["x_train"],
                   a["y_train"], a.get("x_test"), a.get("y_test"), data_info, spec, spec.get("timings", {}),
                   a.get("losses", a.get("svi_losses")), float(spec.get("pruned_fraction", 0.0)))
        post.__dict__["_inference_data"] = idata  # the cached_property's value, read from the run folder
        return post
