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
#    count of distinct images among the 30 most-activating images of the 30 largest-variance nodes;
# 4. what the paper's sampler targets: the specs follow the paper's code, which takes the prior density of
#    each variance lam as a density of log lam (`jacobian = false`); the same fits with the Jacobian, the
#    proper posterior, side by side.
#
# The specs also take the paper's inputs (pixels / 255, `input_transform = "unit"`) and move the
# horseshoe's variances on their log scale (`site = "log"`), as its code does.
#
# Each fit is a run folder under `$BAYES_MOGP_RUNS` (default `runs/paper`), reused when it is already
# there (`bnn.fit_or_resume`); `benchmarks/bench_paper_compressibility.py` writes the same folders, so after the
# benchmark this notebook only evaluates. From scratch each fit takes about 3.5 minutes on 2 quiet CPU cores (2 s an
# epoch); the fits below shared the machine with other runs, hence the 3.5 to 4.6 s per epoch printed. Quick mode
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


def fit_or_load(prior, target="paper"):
    """The run folder's posterior: read back when finished, resumed when interrupted, else fitted.  ``target``:
    the spec as it is (the paper's), or ``"posterior"`` (with the Jacobian)."""
    suffix = "_posterior" if target == "posterior" else ""
    run = RUNS / f"{'quick_' if QUICK else ''}sghmc_{prior}_{WIDTH}{suffix}"
    over = dict(n_train=2000, num_epochs=3, thin=1, checkpoint_every=1) if QUICK else {}
    if target == "posterior":
        over["jacobian"] = True
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
# With all nodes the MoGP-regime priors are about 4 points above iid (0.88 against 0.84, the paper's
# figures). The difference that matters is how the function is spread over the nodes. With 80% of the nodes
# removed the horseshoe and GBFRY networks lose between a few tenths of a point and a point and a half, and
# the iid network more than half its accuracy; at 90% the iid network is near chance, GBFRY keeps 0.8 and
# the horseshoe about 0.7.
#
# The next cell checks these claims at full size. The test set has 10,000 images, so an accuracy near 0.5
# has a standard error of 0.005 (0.003 near 0.88); every margin asserted below is at least 4 of them.

# %%
acc = {prior: dict(zip(FRACTIONS, sc["pruning"]["accuracy"])) for prior, sc in scores.items()}
if not QUICK:
    for prior in ("horseshoe", "gbfry"):
        assert acc[prior][0.8] >= acc[prior][0.0] - 0.015, (prior, acc[prior])
        assert acc[prior][0.0] >= acc["iid"][0.0] + 0.02, (prior, acc[prior], acc["iid"])
        assert acc[prior][0.9] >= acc["iid"][0.9] + 0.3, (prior, acc[prior], acc["iid"])
    assert acc["iid"][0.8] <= acc["iid"][0.0] - 0.3, acc["iid"]
    print("checked: horseshoe and GBFRY within 1.5 points of their full networks at 80% pruned and 2+ points "
          "above iid in full; iid 30+ points down at 80%, 30+ below both at 90%")

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
# The order is the paper's: iid lowest, the MoGP-regime priors well above it (the paper: about 353 for iid,
# 547 for the horseshoe and 532 for GBFRY). Our counts are higher than the paper's for every prior, and our
# horseshoe is above our GBFRY where the paper has them about equal. The measure depends on the inputs: on
# pixels / 255 every node's pre-activation carries the image's brightness, so the top images of different
# nodes overlap; with each image standardised (the package's default for MNIST and Fashion-MNIST; these specs
# used it before) the three priors gave 726 to 734 and did not separate.

# %%
if not QUICK:
    distinct = {prior: sc["distinct_top_images"] for prior, sc in scores.items()}
    assert distinct["iid"] + 100 <= min(distinct["horseshoe"], distinct["gbfry"]), distinct
    print("checked: the iid network's top nodes share 100+ more of their top images than the MoGP-regime ones")

# %% [markdown]
# What the top nodes respond to: the six most-activating test images of each of the four largest-variance
# nodes, per prior.

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
# ## 4. What the sampler targets: the paper's prior, and the posterior
#
# The paper's code learns each variance on its log scale, u = log lam, and penalises it by the log density
# of lam, without the Jacobian of the change of variables. That is the prior p(lam) / lam on lam: for the
# horseshoe and GBFRY, whose densities fall more slowly than 1/lam near 0, an improper prior that pulls
# unused nodes' variances towards 0. The specs do the same (`jacobian = false`). With the Jacobian
# (`jacobian = true`, the package's default) SGHMC samples the proper posterior. Same data, schedule and key:

# %%
# (quick mode: the horseshoe only, to keep CI's pass short; the code path is the same)
posts_posterior = {prior: fit_or_load(prior, "posterior") for prior in (["horseshoe"] if QUICK else ["horseshoe", "gbfry"])}
scores_posterior = {prior: post.evaluate(x_test, y_test, fractions=FRACTIONS)
                    for prior, post in posts_posterior.items()}
print("fraction pruned          " + " ".join(f"{f:6.2f}" for f in FRACTIONS))
fig, ax = plt.subplots(figsize=(7, 4.5))
for prior, color in zip(posts_posterior, ("C1", "C2")):
    for target, sc, style in (("paper's prior", scores[prior], "o-"), ("posterior", scores_posterior[prior], "s--")):
        print(f"{prior:9s} {target:14s} " + " ".join(f"{a:6.3f}" for a in sc["pruning"]["accuracy"]))
        ax.plot(100 * np.array(FRACTIONS), sc["pruning"]["accuracy"], style, color=color, label=f"{prior}, {target}")
ax.set(xlabel="nodes removed per hidden layer (%)", ylabel="test accuracy", ylim=(0, 1),
       title="SGHMC with the paper's prior (no Jacobian) and with the proper posterior")
ax.legend()
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# In full the two targets give the same accuracy within about half a point. Pruned, the paper's prior keeps
# more: at 80% removed it loses at most about a point and a half where the posterior loses 3 (GBFRY) to 5
# (horseshoe) points, and at 90% GBFRY keeps about 0.83 against 0.69. The paper's compressibility figures are
# those of its prior p(lam) / lam; the posterior under the prior as stated is compressible too, less so.

# %%
acc_posterior = {prior: dict(zip(FRACTIONS, sc["pruning"]["accuracy"])) for prior, sc in scores_posterior.items()}
if not QUICK:
    for prior in posts_posterior:
        assert abs(acc_posterior[prior][0.0] - acc[prior][0.0]) <= 0.01, (prior, acc_posterior[prior], acc[prior])
        assert acc_posterior[prior][0.8] <= acc[prior][0.8] - 0.015, (prior, acc_posterior[prior], acc[prior])
    print("checked: full accuracy within a point under both targets; at 80% pruned the posterior 1.5+ points "
          "below the paper's prior, for both priors")

# %% [markdown]
# The same experiment with MAP training (four hidden layers, the prior as a penalty) and at other widths:
# `uv run python benchmarks/bench_paper_compressibility.py --methods sghmc,map --priors iid,horseshoe,gbfry
# --targets both` prints the full table next to the paper's figures.
