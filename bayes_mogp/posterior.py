"""What every fitted model returns: the :class:`Posterior` base class (NNGP/NTK, MoGP, BNN).

The lines that fit and predict with any model::

    post = bayes_mogp.<model>.fit(key, data, ...)      # data: a bayes_mogp.data.Dataset, or arrays x, y
    pred = post.predict(x_new)                         # a bayes_mogp.prediction.Prediction, user units
    post.score(x_test, targets)                        # bayes_mogp.metrics.score of that prediction
    idata = post.to_inference_data()                   # ArviZ: posterior, sample_stats, log_likelihood, ...
    post.save(run_dir); bayes_mogp.load(run_dir)       # a run folder (bayes_mogp.runs), any kind

As NumPyro's ``Distribution`` owns what every distribution shares, :class:`Posterior` owns what every
fitted model shares: the input checks of ``predict`` (:meth:`Posterior.check_inputs`), ``score``,
``save``/``load`` (one run-folder format), the renaming of NumPyro's sampler statistics to ArviZ's names
(:func:`stats_to_arviz`, :func:`stats_from_arviz`), the change of units of log densities from the model's
standardised targets to the user's (:meth:`Posterior.to_user_log_density`), PSIS-LOO (:meth:`Posterior.loo`),
a short ``repr`` and the total fitting time (:attr:`Posterior.seconds`).  A model supplies its arrays
(``_arrays``, ``_from_run``), ``predict`` and, where it has draws, ``to_inference_data``.

Nothing is mutated after construction: derived pieces (kernels, factorisations, InferenceData) are
``functools.cached_property`` values computed on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, InputTypeError
from .prediction import Prediction
from .validation import check_finite_array

__all__ = ["Posterior", "STAT_NAMES", "stats_to_arviz", "stats_from_arviz"]

#: NumPyro's sampler statistics -> ArviZ's ``sample_stats`` names (``lp`` is minus the potential energy)
STAT_NAMES = {"potential_energy": "lp", "energy": "energy", "diverging": "diverging", "num_steps": "n_steps",
              "accept_prob": "acceptance_rate", "adapt_state.step_size": "step_size"}


def stats_to_arviz(stats: dict) -> dict:
    """NumPyro statistics ``(chain, draw)`` under ArviZ's names (:data:`STAT_NAMES`; other dots become ``_``)."""
    out = {}
    for k, v in stats.items():
        v = np.asarray(v)
        out[STAT_NAMES.get(k, k.replace(".", "_"))] = -v if k == "potential_energy" else v
    return out


def stats_from_arviz(idata) -> dict:
    """The inverse of :func:`stats_to_arviz` on an InferenceData's ``sample_stats`` group ({} without one)."""
    if "sample_stats" not in idata.groups():
        return {}
    inv = {v: k for k, v in STAT_NAMES.items()}
    out = {}
    for k, v in idata.sample_stats.data_vars.items():
        name = inv.get(k, k)
        out[name] = -np.asarray(v.values) if name == "potential_energy" else np.asarray(v.values)
    return out


@dataclass(frozen=True, eq=False, repr=False, kw_only=True)
class FitRecord:
    """The record of the fitted data that the NNGP and MoGP posteriors share, as keyword-only dataclass fields
    (a mixin before :class:`Posterior`): ``data_info``, the input and target transforms, ``task``,
    ``num_classes`` and ``timings``."""

    data_info: dict
    input_transform: Any
    target_transform: Any
    task: str
    num_classes: int | None
    timings: dict = field(default_factory=dict)


class Posterior:
    """Base class of every fitted model (module docstring).

    Subclasses are dataclasses with at least ``x_train`` (training inputs; their number of columns is the
    input width ``predict`` accepts), ``task``, ``num_classes``, ``target_transform``, ``data_info``
    (:meth:`bayes_mogp.data.Dataset.describe`: name, sizes, fingerprint) and ``timings``, and the class
    attributes ``kind`` (the run folder's kind) and ``has_draws`` (whether ``save`` writes ``posterior.nc``).
    """

    kind: str = ""
    has_draws: bool = True
    diagnostic_vars: tuple = ()
    #: how the draws were made (the BNN's "nuts", "sghmc", ...), None for a single fitting method
    method: str | None = None
    #: the held-out ``(x, targets)`` the posterior carries (BNN runs), None otherwise
    test_data: tuple | None = None
    #: the optimiser's or sampler's trace per step or epoch, where there is one
    losses: np.ndarray | None = None

    @property
    def prior_name(self) -> str | None:
        """The per-node variance prior, where the model has one."""
        return None

    # -- inputs ---------------------------------------------------------------------------------------------
    @property
    def input_dim(self) -> int:
        """The number of input columns (user units) that :meth:`predict` accepts."""
        return int(np.shape(self.x_train)[1])

    def check_inputs(self, x) -> np.ndarray:
        """``x`` as a float64 ``(m, input_dim)`` array; :class:`InputError` naming ``x`` if it is not a finite
        2-d array with the training inputs' number of columns, :class:`InputTypeError` if not numeric."""
        x = check_finite_array("x", x, ndim=2)
        if x.dtype.kind not in "biuf":
            raise InputTypeError(f"x must be numeric, got dtype {x.dtype}")
        if x.shape[1] != self.input_dim:
            raise InputError(f"x must have {self.input_dim} columns (as the training inputs), got shape {x.shape}")
        return x.astype(np.float64)

    # -- what every model shares --------------------------------------------------------------------------------
    def predict(self, x) -> Prediction:  # pragma: no cover - every model defines it
        raise NotImplementedError

    def score(self, x, targets) -> dict:
        """:func:`bayes_mogp.metrics.score` of :meth:`predict` at ``x`` against ``targets`` (real targets in
        the user's units, or integer labels)."""
        from .metrics import score

        return score(self.predict(x), targets)

    def evaluate(self, x, targets) -> dict:
        """:meth:`score` and what the model adds (pruning curves, ...); here the score alone."""
        return self.score(x, targets)

    @property
    def seconds(self) -> float | None:
        """Total fitting time in seconds (``timings["seconds"]``), None if unknown."""
        value = (self.timings or {}).get("seconds")
        return None if value is None else float(value)

    @property
    def y_observed(self) -> np.ndarray:
        """The training targets ``y_train`` (models that keep them: NNGP/NTK, MoGP) in the user's units
        (regression) or as class labels (classification): the InferenceData's ``observed_data``."""
        if self.task == "classification":
            return np.argmax(self.y_train, axis=-1)
        return self.target_transform.inverse_mean(self.y_train)

    def to_user_log_density(self, log_density):
        """Log densities of standardised targets moved to the user's units: minus :math:`\\sum_k \\log s_k`
        of the target scaling (regression); unchanged for classification."""
        if self.target_transform is None:
            return log_density
        return log_density - float(np.sum(np.log(self.target_transform.scale)))

    def loo(self, **kwargs):
        """``arviz.loo`` of :meth:`to_inference_data` (PSIS-LOO on its ``log_likelihood`` group)."""
        import arviz as az

        return az.loo(self.to_inference_data(), **kwargs)

    def __repr__(self) -> str:
        name = self.data_info.get("name") if isinstance(self.data_info, dict) else None
        parts = [f"task={self.task!r}", f"n_train={int(np.shape(self.x_train)[0])}", f"input_dim={self.input_dim}"]
        if name:
            parts.insert(0, f"data={name!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    # -- run folders ---------------------------------------------------------------------------------------------
    def _arrays(self) -> dict:  # pragma: no cover - every model defines it
        raise NotImplementedError

    def _manifest_spec(self) -> dict:  # pragma: no cover - every model defines it
        raise NotImplementedError

    def save(self, out_dir, *, overwrite: bool = False) -> Path:
        """Write a run folder (:mod:`bayes_mogp.runs`): ``arrays.npz``, ``posterior.nc`` where the model has
        draws, ``manifest.json`` last.  A folder that already holds a run is refused unless ``overwrite``."""
        from .runs import write_run

        out = Path(out_dir)
        if not overwrite and (out / "manifest.json").exists():
            raise InputError(f"{out}: already holds a run; pass overwrite=True (CLI: another --out) to replace it")
        return write_run(out, kind=self.kind, spec=self._manifest_spec(), data=self.data_info,
                         arrays=self._arrays(), inference_data=self.to_inference_data() if self.has_draws else None)

    @classmethod
    def load(cls, run_dir):
        """Read a run folder written by :meth:`save`; another kind, another format version, a missing or a
        damaged file is refused with one line (:class:`bayes_mogp.runs.RunFolderError`)."""
        from .runs import RunFolderError, load_inference_data, read_arrays, read_manifest

        manifest = read_manifest(run_dir, kind=cls.kind)
        arrays = read_arrays(run_dir)
        idata = load_inference_data(run_dir) if cls.has_draws else None
        try:
            return cls._from_run(dict(manifest["spec"]), arrays, idata, manifest["data"])
        except KeyError as exc:
            raise RunFolderError(f"{run_dir}: incomplete {cls.kind} run folder (missing {exc.args[0]!r})") from None

    @classmethod
    def _from_run(cls, spec: dict, arrays: dict, idata, data_info: dict):  # pragma: no cover
        raise NotImplementedError
