"""Bayesian neural networks with per-node variance priors: NumPyro models, NUTS/SVI/MILE/SG-MCMC with
checkpoint and exact resume, posterior prediction in the user's units, pruning, ArviZ.

    post = bayes_mogp.bnn.fit(jax.random.PRNGKey(0), "bnn_regression_horseshoe", x, y)
    post.predict(x_new); post.score(x_test, y_test); post.save("runs/r"); bayes_mogp.load("runs/r")

Modules: :mod:`.models` (the maths and parametrisation), :mod:`.inference` (NUTS, SVI, precision), :mod:`.mile`
(microcanonical Langevin ensembles), :mod:`.sgmcmc` (minibatch SG-MCMC and MAP),
:mod:`.checkpoint` (sampler state as arrays), :mod:`.inputs` (input map, PCA), :mod:`.prediction`
(outputs over draws, pruning), :mod:`.posterior` (:class:`BNNPosterior`), :mod:`.spec` (spec tables),
:mod:`.pipeline` (:func:`fit`, :func:`resume`).
"""

from ..checkpoint import CheckpointError, load_checkpoint
from .inference import NutsResult, NutsSettings, SviResult, make_kernel, precision, resume_nuts, run_nuts, run_svi
from .inputs import InputMap, pca_inputs
from .mile import MileResult, MileSettings, resume_mile, run_mile
from .models import ACTIVATIONS, LIKELIHOODS, BNNConfig, bnn_model, centred_horseshoe_model, forward
from .pipeline import as_dataset, fit, fit_or_resume, resume
from .posterior import BNNPosterior
from .prediction import flatten_chains, forward_draws, params_from_samples, predict_probs, prune_masks
from .spec import read_spec

__all__ = [
    "fit", "fit_or_resume", "resume", "BNNPosterior", "as_dataset", "read_spec",
    "BNNConfig", "bnn_model", "centred_horseshoe_model", "forward", "ACTIVATIONS", "LIKELIHOODS",
    "NutsResult", "NutsSettings", "SviResult", "make_kernel", "run_nuts", "resume_nuts", "run_svi", "precision",
    "MileSettings", "MileResult", "run_mile", "resume_mile",
    "load_checkpoint", "CheckpointError", "InputMap", "pca_inputs",
    "params_from_samples", "forward_draws", "predict_probs", "prune_masks", "flatten_chains",
]
