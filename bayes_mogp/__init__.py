"""bayes-mogp: Bayesian neural networks with per-node random variances and their
infinite-width limits, Gaussian processes (GP) and mixtures of Gaussian processes (MoGP).

Subpackages (one concept per module; see README.md for the map):

- :mod:`bayes_mogp.priors`      per-node variance priors, width scaling, Levy limits
- :mod:`bayes_mogp.networks`    finite-width networks under eq. (1) of Lee et al. (2023), pruning
- :mod:`bayes_mogp.table1`      the measurements behind Table 1 and the rules deciding its cells
- :mod:`bayes_mogp.kernels`     NNGP/NTK closed forms and the neural-tangents backend
- :mod:`bayes_mogp.gp`          exact GP / NTK-ensemble prediction
- :mod:`bayes_mogp.data`        MNIST / Fashion-MNIST sources and preprocessing
- :mod:`bayes_mogp.mogp`        random-kernel prior and MoGP regression
- :mod:`bayes_mogp.bnn`         NumPyro BNNs with per-node priors
- :mod:`bayes_mogp.depth_width` the log-Gaussian law of deep ReLU networks and ResNets

Every fitted model is a :class:`bayes_mogp.posterior.Posterior` (``predict``, ``score``,
``to_inference_data``, ``save``; :func:`load` reads any run folder back).

Importing the package changes no global setting.  The fits and predictions that need float64 (the GP
and MoGP Cholesky factorisations and log-likelihoods) turn it on for their own computation only
(:func:`bayes_mogp.numerics.float64`), so they work from a fresh interpreter; lower-level functions
check that ``jax_enable_x64`` is on and say how to turn it on (:func:`bayes_mogp.numerics.require_x64`).
"""

__version__ = "0.1.0"


def load(run_dir):
    """The posterior saved in any run folder (NNGP/NTK, MoGP or BNN): :func:`bayes_mogp.runs.load`."""
    from .runs import load as _load

    return _load(run_dir)
