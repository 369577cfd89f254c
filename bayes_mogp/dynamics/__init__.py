"""Training dynamics of finite networks with per-node variances: lazy training measured against the
linearised network and the infinite-width NTK (:mod:`.lazy`)."""

from .lazy import (ACTIVATIONS_LAZY, LazySettings, estimate_bytes, estimate_seconds, gradient_descent, lazy_training,
                   measure_width, reference_ntk, toy_problem)

__all__ = ["LazySettings", "toy_problem", "gradient_descent", "measure_width", "lazy_training", "estimate_seconds", "estimate_bytes",
           "reference_ntk", "ACTIVATIONS_LAZY"]
