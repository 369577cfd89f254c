"""MoGP limit of networks with per-node random variances (Lee et al. 2023, section 3), and MoGP regression.

- :mod:`.prior`: draws of the random limit kernel on a finite input set (one layer, deep chain), truncated
  at the J largest jumps with the remainder folded into the drift; the finite-width kernel it is the law of.
- :mod:`.likelihood`: GP-plus-sparse-network marginal likelihood and prediction, one eigendecomposition
  then Woodbury (and the direct Cholesky reference).
- :mod:`.features`: the learned features as functions of the input (input-space weights with a bias at
  depth 1, a Nystrom map for deeper base kernels).
- :mod:`.model`: the NumPyro model, MAP start, NUTS.
- :mod:`.smc`, :mod:`.tempering`: the samplers besides NUTS, adaptive tempered SMC from the prior and parallel
  tempering from the MAP start (``fit(..., sampler="smc" | "pt")``).
- :mod:`.predictive`: the mixture-of-GPs predictive and its class probabilities.
- :mod:`.posterior`: ``fit(key, data) -> MoGPPosterior`` with ``predict``, ``score``, ``to_inference_data``,
  ``save``/``load``, feature directions; ``kernel_weights``, the identified weights of the features.
- :mod:`.selection`: depth, feature rank and J chosen by the exact LOO on the training data.
"""

from . import features, likelihood, model, posterior, predictive, prior, selection
from .posterior import MoGPPosterior, fit, kernel_weights
from .settings import MoGPSettings
from .selection import Selection, select_settings
from .prior import finite_width_kernel, sample_outputs, sample_random_kernel

__all__ = ["features", "likelihood", "model", "posterior", "predictive", "prior", "selection", "fit", "MoGPPosterior",
           "kernel_weights", "MoGPSettings", "Selection", "select_settings", "finite_width_kernel", "sample_outputs",
           "sample_random_kernel"]
