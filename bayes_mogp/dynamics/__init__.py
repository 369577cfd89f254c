"""Training dynamics of finite networks with per-node variances: lazy training measured against the
linearised network and the infinite-width NTK (:mod:`.lazy`), and the initial NTK's law against its
infinite-width limit (:mod:`.ntk_law`)."""

from .lazy import (ACTIVATIONS_LAZY, LazySettings, estimate_bytes, estimate_seconds, gradient_descent, lazy_training,
                   measure_width, reference_ntk, toy_problem)
from .ntk_law import compare_ntk_law, initial_ntk_trace, limit_ntk_trace

__all__ = ["LazySettings", "toy_problem", "gradient_descent", "measure_width", "lazy_training", "estimate_seconds", "estimate_bytes",
           "reference_ntk", "ACTIVATIONS_LAZY", "initial_ntk_trace", "limit_ntk_trace", "compare_ntk_law"]
