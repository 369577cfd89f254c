"""What every fitted model returns: the :class:`Posterior` protocol (NNGP/NTK, MoGP, BNN).

The three lines that fit and predict with any model::

    post = bayes_mogp.<model>.fit(key, data, ...)      # data: a bayes_mogp.data.Dataset
    pred = post.predict(x_new)                         # a bayes_mogp.prediction.Prediction, user units
    post.score(x_test, targets)                        # bayes_mogp.metrics.score of that prediction

and ``post.to_inference_data()`` (ArviZ), ``post.save(run_dir)``, ``bayes_mogp.load(run_dir)`` (any kind;
:mod:`bayes_mogp.runs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from .prediction import Prediction

__all__ = ["Posterior"]


@runtime_checkable
class Posterior(Protocol):
    """A fitted model: predicts any inputs in the user's units, saves to and loads from a run folder."""

    kind: str  # "nngp" | "mogp" | "bnn": the run folder's kind
    task: str  # "regression" | "classification"

    def predict(self, x) -> Prediction:
        """Predictive distribution at inputs ``x`` (m, d) in the user's units."""
        ...

    def score(self, x, targets) -> dict:
        """:func:`bayes_mogp.metrics.score` of ``predict(x)`` against ``targets`` (real targets or labels)."""
        ...

    def to_inference_data(self):
        """ArviZ InferenceData (posterior, sample_stats where there was sampling, observed_data)."""
        ...

    def save(self, out_dir) -> Path:
        """Write a run folder (:mod:`bayes_mogp.runs`)."""
        ...
