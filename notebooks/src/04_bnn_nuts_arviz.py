# %% [markdown]
# # BNNs with per-node variance priors: NUTS, ArviZ diagnostics, prediction, pruning
#
# A one-hidden-layer tanh BNN on an MNIST subset (inputs reduced by PCA, whitened), with the horseshoe
# per-node variance prior in our non-centred parametrisation (`bayes_mogp.bnn.models`), sampled by NUTS.
# Quick mode (`BAYES_MOGP_QUICK=1`) uses a tiny network and few draws: the diagnostics then show an
# unconverged sampler, which is the point of looking at them.

# %%
import os

import jax

jax.config.update("jax_enable_x64", True)
import arviz as az
import matplotlib.pyplot as plt
import numpy as np

from bayes_mogp.bnn import BNNConfig, flatten_chains, pca_inputs, predict_probs, pruning_curve, run_nuts
from bayes_mogp.bnn.pipeline import inference_data
from bayes_mogp.data import mnist_5k_split
from bayes_mogp.report import diagnostics

QUICK = os.environ.get("BAYES_MOGP_QUICK") == "1"
N, WIDTH, PCA, WARM, DRAWS, CHAINS = (100, 8, 10, 15, 15, 2) if QUICK else (500, 50, 50, 500, 500, 4)
split = mnist_5k_split(n_train=N, n_test=1000)
xtr, xte, ratio = pca_inputs(split.x_train, split.x_test, PCA)
arrays = {"x_train": xtr, "y_train": split.labels_train, "x_test": xte, "y_test": split.labels_test}
print(f"{N} training images, PCA {PCA} components ({ratio:.0%} of the variance)")

# %% [markdown]
# The prior is the one of `models/bnn_horseshoe.toml`: half-Cauchy local scales, a half-normal global scale
# centred on the width scaling pi/p, and the slab of the regularised horseshoe.  The PCA inputs are
# linearly separable, so the softmax likelihood keeps rewarding larger output weights: with the plain
# horseshoe's Cauchy tails the largest lambdas run to the hundreds and NUTS hits its tree-depth cap on
# every draw (`benchmarks/bench_bnn_geometry.py` shows it side by side); the slab bounds them.

# %%
from bayes_mogp.specs import load_spec

MODEL = load_spec("bnn_horseshoe")["model"]
config = BNNConfig(d_in=PCA, d_out=10, widths=(WIDTH,), prior="horseshoe", global_scale=MODEL["global_scale"],
                   slab_scale=MODEL["slab_scale"])
print(config.global_scale, "global scale, slab", config.slab_scale)
res = run_nuts(jax.random.PRNGKey(0), config, xtr, split.labels_train, num_warmup=WARM, num_samples=DRAWS,
               num_chains=CHAINS)
idata = inference_data(config, res.samples, res.stats, arrays, 0)
print(f"{res.seconds:.1f} s, {int(res.stats['diverging'].sum())} divergences")
idata

# %% [markdown]
# ## Diagnostics on identifiable quantities
# Raw weights are not identified (hidden-unit permutations and signs); we judge mixing on the global
# scale, the sorted lambdas, the total log-likelihood and test predictions.

# %%
diag = diagnostics(idata)
{k: diag[k] for k in ("r_hat_max", "ess_bulk_min", "ess_tail_min", "divergences", "bfmi_min", "raw_weights_r_hat_max")}

# %%
az.plot_trace(idata, var_names=["tau0", "log_lik_total"], compact=False)
plt.tight_layout()

# %%
az.plot_rank(idata, var_names=["tau0", "log_lik_total"]);

# %%
az.plot_energy(idata);

# %% [markdown]
# ## Prediction and pruning by posterior lambda

# %%
flat = flatten_chains(res.samples)
curve = pruning_curve(config, flat, xte, split.labels_test, (0.0, 0.5, 0.8, 0.9))
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(np.array(curve["fraction"]) * 100, curve["accuracy"], "o-")
ax.set(xlabel="% hidden nodes removed (smallest lambda per draw)", ylabel="test accuracy")
curve

# %% [markdown]
# ## Posterior lambdas across priors
# The ordered node variances: the (regularised) horseshoe's are capped by the slab and then decay, the inverse gamma's (GP regime)
# stay flat, the Bernoulli's switch nodes on and off (DiscreteHMCGibbs).

# %%
fig, ax = plt.subplots(figsize=(5, 3.2))
for prior in ("horseshoe", "inverse_gamma", "bernoulli"):
    cfg = config if prior == "horseshoe" else BNNConfig(d_in=PCA, d_out=10, widths=(WIDTH,), prior=prior)
    r = res if prior == "horseshoe" else run_nuts(jax.random.PRNGKey(1), cfg, xtr, split.labels_train,
                                                  num_warmup=WARM, num_samples=DRAWS, num_chains=CHAINS)
    lam = r.samples["lam_sorted0"].reshape(-1, WIDTH)
    ax.loglog(np.arange(1, WIDTH + 1), np.median(lam, 0) + 1e-12, "o-", ms=3, label=prior)
ax.set(xlabel="rank j", ylabel="posterior median lambda_(j)")
ax.legend();
