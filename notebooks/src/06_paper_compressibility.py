# %% [markdown]
# # Compressibility at the paper's scale: SGHMC on all 60,000 Fashion-MNIST images, then pruning
#
# Lee, Ayed, Lee, Yang, Jung and Caron (*Deep neural networks with dependent weights*, JMLR 2023) train
# 784-500-500-10 ReLU networks with per-node variance priors on the full Fashion-MNIST training set by SGHMC,
# then remove the hidden nodes with the smallest variances. Under the iid prior (a Gaussian-process limit)
# every node carries a little of the function, so pruning destroys it; under a MoGP-regime prior (horseshoe,
# GBFRY) a few nodes carry most of it, and 80% or more of them can go.
#
# This notebook runs that experiment with the specs `models/paper_fashion_{iid,horseshoe,gbfry}.toml`
# (the paper's SGHMC protocol: batch 100, 100 epochs, cosine step size 0.5 to 0.1, friction 0.1, noise from
# epoch 51, a draw every 2 epochs in the second half) and shows:
#
# 1. the pruning curves: test accuracy of the posterior predictive against the fraction of nodes removed;
# 2. the variances the posterior learned: sorted sqrt(lam) per layer;
# 3. what the largest-variance nodes respond to: the test images that activate them most, and the paper's
#    count of distinct images among the 30 most-activating images of the 30 largest-variance nodes.
#
# Each fit is a run folder under `$BAYES_MOGP_RUNS` (default `runs/paper`), reused when it is already
# there (`bnn.fit_or_resume`); `benchmarks/bench_paper_compressibility.py` writes the same folders, so after the
# benchmark this notebook only evaluates. From scratch each fit takes 5 to 10 minutes on 2 CPU cores (the
# seconds per epoch printed below depend on what else the machine was running). Quick mode
# (`BAYES_MOGP_QUICK=1`) fits 2000 images for 3 epochs at width 200: it runs every step, and its numbers mean
# nothing.

# %%
import os
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

from bayes_mogp import bnn

QUICK = os.environ.get("BAYES_MOGP_QUICK") == "1"
RUNS = Path(os.environ.get("BAYES_MOGP_RUNS", "runs/paper"))
PRIORS = ["iid", "horseshoe", "gbfry"]
WIDTH = 200 if QUICK else 500
FRACTIONS = [0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99]


def fit_or_load(prior):
    """The run folder's posterior: read back when finished, resumed when interrupted, else fitted."""
    run = RUNS / f"{'quick_' if QUICK else ''}sghmc_{prior}_{WIDTH}"
    over = dict(n_train=2000, num_epochs=3, thin=1, checkpoint_every=1) if QUICK else {}
    return bnn.fit_or_resume(jax.random.key(0), f"paper_fashion_{prior}", run, widths=[WIDTH, WIDTH], **over)


posts = {prior: fit_or_load(prior) for prior in PRIORS}
for prior, post in posts.items():
    s = post.summary()
    print(f"{prior:10s} {s['method']}: {post.num_chains} chain x {post.num_draws} draws, "
          f"{s['epochs']} epochs, {s['seconds_per_epoch']:.2f} s per epoch")

# %% [markdown]
# ## 1. Pruning curves
#
# `post.evaluate(x, y, fractions)` scores the posterior predictive (all draws) on the 10,000 test images,
# and the pruned posteriors: in each draw and hidden layer the given fraction of nodes with the smallest
# sqrt(lam) is removed. Under the iid prior every lam is the same, so the nodes are ranked by lam times the
# squared norm of their outgoing weights instead, as the paper does.

# %%
x_test, y_test = posts["iid"].test_data
if QUICK:
    x_test, y_test = x_test[:2000], y_test[:2000]
scores = {prior: post.evaluate(x_test, y_test, fractions=FRACTIONS) for prior, post in posts.items()}
print("fraction pruned " + " ".join(f"{f:6.2f}" for f in FRACTIONS))
for prior, sc in scores.items():
    print(f"{prior:15s} " + " ".join(f"{a:6.3f}" for a in sc["pruning"]["accuracy"]))

fig, ax = plt.subplots(figsize=(7, 4.5))
for prior, sc in scores.items():
    ax.plot(100 * np.array(FRACTIONS), sc["pruning"]["accuracy"], "o-", label=prior)
ax.set(xlabel="nodes removed per hidden layer (%)", ylabel="test accuracy", ylim=(0, 1),
       title=f"Fashion-MNIST, 784-{WIDTH}-{WIDTH}-10, SGHMC: pruning by per-node variance")
ax.axhline(0.1, color="grey", lw=0.8, ls=":")
ax.text(1, 0.12, "chance", color="grey")
ax.legend()
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# With all nodes the three priors are within about 3 points of each other (iid lowest). The difference is in
# how the function is spread over the nodes. With 80% of the nodes removed the horseshoe network loses less
# than a point and the iid network more than half its accuracy; at 90% the iid network is near chance and
# the horseshoe keeps most of it. GBFRY lies in between: it matches the horseshoe up to 50% but loses about
# 5 points at 80%, where the paper reports both MoGP-regime priors at about 0.88. That is a miss of our GBFRY
# runs at this width (one run, not the paper's 5 trials), not of the horseshoe.
#
# The next cell checks these claims at full size. The test set has 10,000 images, so an accuracy near 0.5
# has a standard error of 0.005; every margin asserted below is at least 4 of them.

# %%
acc = {prior: dict(zip(FRACTIONS, sc["pruning"]["accuracy"])) for prior, sc in scores.items()}
if not QUICK:
    assert acc["horseshoe"][0.8] >= acc["horseshoe"][0.0] - 0.01, acc["horseshoe"]
    assert acc["iid"][0.8] <= acc["iid"][0.0] - 0.3, acc["iid"]
    assert acc["iid"][0.9] <= acc["horseshoe"][0.9] - 0.05, (acc["iid"], acc["horseshoe"])
    assert acc["gbfry"][0.8] >= acc["iid"][0.8] + 0.2, (acc["gbfry"], acc["iid"])
    print("checked: horseshoe within 1 point at 80% pruned; iid 30+ points down at 80%, 5+ below the horseshoe "
          "at 90%; GBFRY 20+ points above iid at 80%")

# %% [markdown]
# ## 2. The learned variances
#
# Sorted sqrt(lam) of each hidden layer, averaged over the draws (log scale). The iid prior's variances are
# fixed at 1/p; the horseshoe and GBFRY posteriors put a few nodes orders of magnitude above the rest.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for layer, ax in enumerate(axes):
    for prior, post in posts.items():
        lam = np.asarray(post.flat_samples()[f"lam{layer}"])
        ax.plot(np.sqrt(-np.sort(-lam, axis=-1)).mean(0), label=prior)
    ax.set(yscale="log", xlabel="node rank", title=f"hidden layer {layer + 1}: sorted sqrt(lam)")
    ax.grid(alpha=0.3)
axes[0].set_ylabel("sqrt(lam), mean over draws")
axes[0].legend()
plt.show()

# %% [markdown]
# ## 3. What the largest-variance nodes respond to
#
# For the 30 nodes of the last hidden layer with the largest variance (iid: the largest lam times outgoing
# weight norm), the paper takes the 30 test images (of the first 5000) with the largest pre-activation,
# averaged over draws, and counts the distinct images among those 900. More distinct images means the top
# nodes respond to different things: a more diverse representation.

# %%
for prior, sc in scores.items():
    print(f"{prior:10s} distinct images among the top 30 of the top 30 nodes: {sc['distinct_top_images']:.0f}")

# %% [markdown]
# Here this measure does not separate the priors: the three counts are within a few images of each other,
# about 725 of 900, where the paper reports about 353 (iid), 547 (horseshoe) and 532 (GBFRY). The count depends
# on choices the paper's description leaves open (pre- or post-activation, averaged over draws or per draw,
# which test images), so we do not reproduce its ordering with the measure described above. The images below
# show that the top nodes of every prior respond to one clothing class each.

# %% [markdown]
# The six most-activating test images of each of the four largest-variance nodes, per prior.

# %%
from bayes_mogp.bnn.prediction import last_hidden_preactivations, node_scores

pool = np.asarray(x_test)[:5000]
fig, axes = plt.subplots(len(PRIORS) * 4, 6, figsize=(6, 1.05 * 4 * len(PRIORS)))
for i, (prior, post) in enumerate(posts.items()):
    flat = post.flat_samples()
    layer = len(post.config.widths) - 1
    nodes = np.argsort(-node_scores(flat, layer).mean(0))[:4]
    h = last_hidden_preactivations(post.config, flat, post.model_inputs(pool)).mean(0)
    for j, node in enumerate(nodes):
        top = np.argsort(-h[:, node])[:6]
        for k, idx in enumerate(top):
            ax = axes[4 * i + j, k]
            ax.imshow(pool[idx].reshape(28, 28), cmap="gray_r")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[4 * i + j, 0].set_ylabel(f"{prior}\nnode {node}", fontsize=7)
fig.suptitle("most-activating test images of the largest-variance nodes (last hidden layer)", fontsize=9)
plt.tight_layout()
plt.show()

# %% [markdown]
# The same experiment with MAP training (four hidden layers, the prior as a penalty) and at other widths:
# `uv run python benchmarks/bench_paper_compressibility.py --methods sghmc,map --priors iid,horseshoe,gbfry`
# prints the full table next to the paper's figures.
