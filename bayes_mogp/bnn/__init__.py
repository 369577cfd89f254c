"""Bayesian neural networks with per-node variance priors: NumPyro models, NUTS/SVI with checkpoint and
resume, posterior prediction and pruning.  See :mod:`.models` for the maths and parametrisation."""

from .inference import NutsResult, load_checkpoint, make_kernel, resume_nuts, run_nuts, run_svi
from .models import ACTIVATIONS, LIKELIHOODS, BNNConfig, bnn_model, centred_horseshoe_model, forward
from .prediction import (
    classification_metrics,
    flatten_chains,
    params_from_samples,
    pca_inputs,
    predict_mean,
    predict_probs,
    prune_masks,
    pruning_curve,
)

__all__ = [
    "BNNConfig", "bnn_model", "centred_horseshoe_model", "forward", "ACTIVATIONS", "LIKELIHOODS",
    "NutsResult", "make_kernel", "run_nuts", "resume_nuts", "run_svi", "load_checkpoint",
    "params_from_samples", "predict_probs", "predict_mean", "classification_metrics", "prune_masks",
    "pruning_curve", "pca_inputs", "flatten_chains",
]
