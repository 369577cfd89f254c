# %% [markdown]
# # BNNs with per-node variance priors: NUTS, ArviZ diagnostics, prediction, pruning, your own data
#
# `bayes_mogp.bnn.fit(key, spec, data)` returns a `BNNPosterior`: `.predict(x)` (a mixture over posterior
# draws, in the units of your data), `.score`, `.evaluate` (with the pruning curve), `.prune(fraction)`,
# `.to_inference_data()` (ArviZ) and `.save(dir)` / `bayes_mogp.load(dir)`.
#
# 1. MNIST with the regularised horseshoe (the spec `models/bnn_horseshoe.toml`: 50 tanh units, 500 images
#    in 50 whitened PCA dimensions, NUTS 4 x 500 draws): diagnostics on the identifiable quantities, prediction,
#    pruning.
# 2. Your own data: a regression on scikit-learn's diabetes data (`models/bnn_regression_horseshoe.toml`),
#    predictions and 90% intervals in the target's units, against ridge regression; SVI as the fast path.
#
# Quick mode (`BAYES_MOGP_QUICK=1`) uses a tiny network and few draws: its diagnostics show an unconverged
# sampler, which is the point of looking at them.

# %%
import os
import tempfile

import arviz as az
import jax
import matplotlib.pyplot as plt
import numpy as np

import bayes_mogp
from bayes_mogp import bnn
from bayes_mogp.bnn.spec import read_spec

QUICK = os.environ.get("BAYES_MOGP_QUICK") == "1"
KEY = jax.random.PRNGKey(0)

# %% [markdown]
# ## 1. MNIST, regularised horseshoe, NUTS
#
# The spec holds the model (prior, widths, activation, global scale, slab), the data (MNIST subset, PCA) and
# the sampler settings; `fit` reads it, builds the data set, and samples.  Why a slab and a half-normal global
# scale: the PCA inputs are linearly separable, so the softmax likelihood keeps rewarding larger output
# weights; with the plain horseshoe's Cauchy tails the largest lambdas run into the hundreds and NUTS hits its
# tree-depth cap on every draw (`benchmarks/bench_bnn_geometry.py` shows it side by side).

# %%
spec = read_spec("bnn_horseshoe")
if QUICK:
    spec["model"]["widths"] = [8]
    spec["data"]["pca"] = 10
settings = dict(n_train=100, num_warmup=40, num_samples=40, num_chains=2, max_tree_depth=5) if QUICK else {}
post = bnn.fit(KEY, spec, **settings)
post.summary()

# %% [markdown]
# ### Diagnostics on identifiable quantities
# Raw weights are not identified (hidden units can be permuted and their signs flipped), so mixing is judged
# on what is: the global scale `tau0`, the sorted node variances `lam_sorted0`, the training log-likelihood
# and the predicted probability of the true class at 50 test images (`post.diagnostic_vars`).

# %%
idata = post.to_inference_data()
summary = az.summary(idata, var_names=post.diagnostic_vars, kind="diagnostics", round_to="none")
print(f"R-hat max {summary['r_hat'].max():.4f}, bulk ESS min {summary['ess_bulk'].min():.0f}, "
      f"divergences {int(idata.sample_stats['diverging'].sum())}")
summary.sort_values("ess_bulk").head(8)

# %% [markdown]
# Trace and rank plots of the global scale and of the three largest node variances (rank plots should be
# flat: every chain visits every part of the posterior).

# %%
top = {"lam_sorted0_dim_0": [0, 1, 2]}
az.plot_trace(idata, var_names=["tau0", "lam_sorted0"], coords=top, compact=False, figsize=(10, 7))
plt.tight_layout()

# %%
az.plot_rank(idata, var_names=["tau0", "lam_sorted0"], coords=top, figsize=(10, 6))
plt.tight_layout()

# %% [markdown]
# What the slab does to the node variances. The regularised horseshoe replaces each lambda by
# `c^2 lambda / (c^2 + lambda)` with `c^2` on the `2/p` scale, so no node's variance exceeds the cap
# `c^2 * 2/p` (dashed line). The likelihood wants large weights on many nodes (the PCA inputs are separable),
# so the largest variances crowd just below the cap instead of running off in the horseshoe's Cauchy tail;
# below them the sorted variances fall by orders of magnitude. That fall is the node selection: the pruning
# curve below removes the small-lambda nodes of every draw.

# %%
cap = spec["model"]["slab_scale"] ** 2 * 2 / post.config.widths[0]
lam_sorted = np.asarray(idata.posterior["lam_sorted0"]).reshape(-1, post.config.widths[0])  # (draws, p)
lo, med, hi = np.quantile(lam_sorted, [0.05, 0.5, 0.95], axis=0)
rank = np.arange(1, len(med) + 1)
fig, ax = plt.subplots(figsize=(6.5, 3.8))
ax.fill_between(rank, lo, hi, alpha=0.3, label="90% interval over draws")
ax.plot(rank, med, "o-", ms=3, label="posterior median")
ax.axhline(cap, color="k", ls="--", lw=1, label=f"slab cap c^2 2/p = {cap:.2f}")
ax.set(yscale="log", xlabel="node, by rank of its variance within the draw", ylabel="lambda (sorted)",
       title="sorted node variances: capped at the top, then a fast decay")
ax.legend(fontsize=8)
plt.show()
at_cap = int(np.sum(med > 0.5 * cap))
ranks = sorted({1, max(1, len(med) // 5), max(1, len(med) // 2), len(med)})
print(f"{at_cap} of {len(med)} nodes within a factor 2 of the cap; posterior median of the sorted lambda at rank "
      + ", ".join(f"{r}: {med[r - 1]:.3g}" for r in ranks))
assert np.all(lam_sorted <= cap * (1 + 1e-6))  # the slab bounds every variance

# %%
az.plot_energy(idata);

# %% [markdown]
# ### Prediction and pruning
# `evaluate` scores the posterior predictive on the held-out images and adds the pruning curve: in every draw
# the given fraction of hidden nodes with the smallest lambda is removed.

# %%
x_test, labels_test = post.test_data
ev = post.evaluate(x_test, labels_test)
print({k: round(v, 4) for k, v in ev.items() if k in ("accuracy", "nll", "ece")})
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(np.array(ev["pruning"]["fraction"]) * 100, ev["pruning"]["accuracy"], "o-")
ax.set(xlabel="% hidden nodes removed (smallest lambda per draw)", ylabel="test accuracy", ylim=(0, 1));

# %% [markdown]
# A pruned posterior is a posterior like any other; and every posterior saves to a run folder (arrays, the
# ArviZ netCDF and a manifest: no pickles) that `bayes_mogp.load` reads back.

# %%
pruned = post.prune(0.8)
with tempfile.TemporaryDirectory() as run:
    post.save(run)
    back = bayes_mogp.load(run)
acc80 = pruned.score(x_test, labels_test)["accuracy"]
print(f"80% of the nodes removed: accuracy {acc80:.3f}; "
      f"reloaded: accuracy {back.score(x_test, labels_test)['accuracy']:.3f}")
s_back, s_post = back.score(x_test, labels_test), post.score(x_test, labels_test)
assert all(np.isclose(s_back[k], s_post[k], rtol=1e-9) for k in s_post)  # the run folder loses nothing
if not QUICK:  # the horseshoe selects nodes: a fifth of them keep the accuracy (2 points on 1000 images)
    assert acc80 > ev["accuracy"] - 0.02, (acc80, ev["accuracy"])

# %% [markdown]
# ## 2. Your own data: regression in the target's units
#
# Any data set goes in as a `bayes_mogp.data.Dataset` (`from_arrays`, `load_npz`, `load_csv`) or as arrays
# `x, y`.  Inputs are standardised on the training part, the targets internally; predictions come back in the
# target's units.  Here: scikit-learn's diabetes data (10 features, a disease-progression score), 80/20 split.

# %%
from sklearn.datasets import load_diabetes
from sklearn.linear_model import RidgeCV

from bayes_mogp.data import from_arrays

raw = load_diabetes()
order = np.random.default_rng(0).permutation(len(raw.target))
test, train = order[:88], order[88:]
data = from_arrays(raw.data[train], raw.target[train], raw.data[test], raw.target[test], name="diabetes")
fast = dict(num_warmup=60, num_samples=40, num_chains=2, max_tree_depth=5) if QUICK else {}
reg = bnn.fit(KEY, "bnn_regression_horseshoe", data, **fast)
scores = reg.score(data.x_test, data.y_test)
ridge = RidgeCV(alphas=np.logspace(-3, 3, 50), cv=5).fit(data.inputs(), data.y_train[:, 0])
ridge_rmse = np.sqrt(np.mean((ridge.predict(data.inputs(data.x_test)) - data.y_test[:, 0]) ** 2))
print(f"BNN: RMSE {scores['rmse']:.1f}, NLL {scores['nll']:.2f}, 90% coverage {scores['coverage_90']:.2f}; "
      f"ridge (cross-validated penalty): RMSE {ridge_rmse:.1f}")

# %%
pred = reg.predict(data.x_test)
lo, hi = pred.interval(0.9)
fig, ax = plt.subplots(figsize=(4.5, 4.5))
ax.errorbar(data.y_test[:, 0], pred.mean[:, 0], yerr=[pred.mean[:, 0] - lo[:, 0], hi[:, 0] - pred.mean[:, 0]],
            fmt="o", ms=3, alpha=0.6, label="predictive mean, 90% interval")
lim = [data.y_test.min(), data.y_test.max()]
ax.plot(lim, lim, "k--", lw=1)
ax.set(xlabel="observed (disease progression)", ylabel="predicted", title="diabetes: test set")
ax.legend(fontsize=8);

# %% [markdown]
# The regression posterior has the same diagnostics (here with the noise scale `sigma` among them).

# %%
ridata = reg.to_inference_data()
az.summary(ridata, var_names=["tau0", "sigma", "log_lik_total"], kind="diagnostics", round_to=4)

# %% [markdown]
# ### SVI: the fast path
# The same model fitted by stochastic variational inference (a low-rank multivariate normal guide), with the
# same prediction API; its draws are independent draws from the fitted guide (no R-hat to read).

# %%
svi = bnn.fit(KEY, "bnn_regression_horseshoe", data, method="svi", guide="low_rank",
              num_steps=300 if QUICK else 5000, num_samples=200)
s = svi.score(data.x_test, data.y_test)
print(f"SVI (low rank): RMSE {s['rmse']:.1f}, NLL {s['nll']:.2f}, 90% coverage {s['coverage_90']:.2f}, "
      f"{svi.timings['seconds']:.0f} s; NUTS: {reg.timings['seconds']:.0f} s")
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(svi.losses)
ax.set(xlabel="step", ylabel="negative ELBO", yscale="symlog");
