"""The compressibility experiment of Lee et al. (2023) side by side with the paper's figures: iid / horseshoe /
GBFRY per-node priors x SGHMC / MAP on all 60,000 Fashion-MNIST images, full and pruned test accuracy and the
representation measure, plus the speed of an SG-MCMC epoch against a bare SGD epoch of the same network.

Fits (one process, one after the other; each a run folder under ``--runs DIR``, reused when it is already
there, so an interrupted benchmark resumes where it stopped):

* ``sghmc``: ``models/paper_fashion_<prior>.toml`` (784-p-p-10, the paper's SGHMC protocol) at each ``--widths``;
* ``map``: ``models/paper_fashion_map_<prior>.toml`` (784 -> 4 x p -> 10, Adam, prior / 5N) at each width.

For each: test accuracy of the posterior predictive (all draws) with 0 / 50 / 80 / 90 / 95 / 98 / 99% of each
hidden layer's nodes removed (smallest sqrt(lam) per draw; iid: lam times the outgoing squared-weight norm),
and the number of distinct images among the 30 most-activating of the first 5000 test images of the 30
largest-variance nodes of the last hidden layer.  The paper's figures (read from its authors' saved outputs;
plots read by eye, about +-2 points) are printed next to ours.

Speed (``--speed``): in this process, at each width, a jitted epoch of bare SGD on the same 784-p-p-10 network
(plain arrays, cross-entropy, one ``lax.scan`` over batches of 100) against our SGHMC epoch without noise, with
Gaussian noise (``bayes_mogp.rng``, and JAX's default generator as BlackJAX draws it) and with two-point noise;
each SGHMC epoch is timed right after a bare one and the median of the paired ratios is printed.

    uv run python benchmarks/bench_paper_compressibility.py [--widths 500 1000] [--priors iid,horseshoe]
        [--methods sghmc,map] [--runs DIR] [--speed] [--quick] [--json]

``--quick``: 2000 training images, p = 200, 3 epochs, and of the jobs asked for only MAP with the horseshoe: a
smoke test of the benchmark's evaluation (pruning, distinct images) in CI's slow pass, not the benchmark; notebook
06's quick mode fits and evaluates SGHMC with the iid, horseshoe and GBFRY priors on the same data and widths.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

FRACTIONS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99)

#: The paper's Fashion-MNIST figures (test accuracy) by (method, prior, width): "full", and pruned fractions.
#: None: not reported at that width.  Sources: the authors' saved outputs as restated in the package's docs.
PAPER = {
    ("sghmc", "iid", 500): {"full": 0.836, 0.5: 0.78},
    ("sghmc", "iid", 1000): {"full": 0.824, 0.5: 0.78},
    ("sghmc", "iid", 2000): {"full": 0.814, 0.5: 0.72},
    ("sghmc", "horseshoe", 500): {"full": 0.883, 0.8: 0.88},
    ("sghmc", "horseshoe", 1000): {"full": 0.882, 0.8: 0.88},
    ("sghmc", "horseshoe", 2000): {"full": 0.883, 0.8: 0.88, 0.95: 0.87},
    ("sghmc", "gbfry", 500): {"full": 0.88, 0.8: 0.88},
    ("sghmc", "gbfry", 1000): {"full": 0.88, 0.8: 0.88},
    ("sghmc", "gbfry", 2000): {"full": 0.88, 0.8: 0.88, 0.95: 0.87},
    ("map", "iid", 2000): {"full": 0.880, 0.8: 0.862, 0.9: 0.602, 0.95: 0.196, 0.98: 0.108, 0.99: 0.100},
    ("map", "horseshoe", 2000): {"full": 0.885, 0.8: 0.887, 0.9: 0.887, 0.95: 0.885, 0.98: 0.766, 0.99: 0.303},
    ("map", "gbfry", 2000): {"full": 0.887, 0.8: 0.885, 0.9: 0.886, 0.95: 0.884, 0.98: 0.772, 0.99: 0.376},
}
#: distinct top images (30 nodes x 30 images), SGHMC, all widths
PAPER_DISTINCT = {"iid": 353, "horseshoe": 547, "gbfry": 532}


#: the (method, prior) pairs ``--quick`` runs (module docstring)
QUICK_JOBS = {("map", "horseshoe")}


def fit_or_load(spec: str, width: int, depth: int, run: Path, *, quick: bool, seed: int, target: str = "paper"):
    """The run in ``run`` (:func:`bayes_mogp.bnn.fit_or_resume`: read back, resumed or fitted) and whether it was
    already finished.  ``target``: ``"paper"`` (the spec: the prior without the Jacobian, as the paper's code) or
    ``"posterior"`` (``jacobian=True``: the proper posterior)."""
    import jax

    from bayes_mogp import bnn

    reused = (run / "manifest.json").exists()
    over = dict(n_train=2000, num_epochs=3, thin=1, checkpoint_every=1) if quick else {}
    if target == "posterior":
        over["jacobian"] = True
    post = bnn.fit_or_resume(jax.random.key(seed), spec, run, progress=True, widths=[width] * depth, **over)
    return post, reused


def evaluate(post, quick: bool) -> dict:
    x, y = post.test_data
    if quick:
        x, y = x[:2000], y[:2000]
    t0 = time.perf_counter()
    scores = post.evaluate(x, y, fractions=FRACTIONS)
    return {"accuracy": scores["accuracy"], "nll": scores["nll"], "ece": scores["ece"],
            "pruned_accuracy": dict(zip(scores["pruning"]["fraction"], scores["pruning"]["accuracy"])),
            "distinct_top_images": scores["distinct_top_images"], "fit_seconds": post.timings.get("seconds"),
            "seconds_per_epoch": post.timings.get("seconds_per_epoch"), "draws": post.num_draws,
            "eval_seconds": time.perf_counter() - t0}


def speed(width: int, quick: bool, reps: int = 5) -> dict:
    """Epoch seconds of bare SGD and of our SGHMC without noise, with Gaussian noise (ours, and JAX's default
    generator as BlackJAX draws it) and with two-point noise.  Each variant is timed ``reps`` times, each time
    right after a bare SGD epoch, and its ratio is the median of those paired ratios (the machine's speed
    drifts between seconds, the pairs share it); the seconds are medians."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from bayes_mogp.bnn.models import BNNConfig
    from bayes_mogp.bnn.sgmcmc import MinibatchSettings, _Runner

    n = 2000 if quick else 60000
    B = 100
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.standard_normal((n, 784)), jnp.float32)
    y = jnp.asarray(rng.integers(0, 10, n), jnp.int32)
    dims = (784, width, width, 10)
    params = [jnp.asarray(rng.standard_normal(s) / np.sqrt(s[0]), jnp.float32) if len(s) == 2 else jnp.zeros(s, jnp.float32)
              for a, b in zip(dims[:-1], dims[1:]) for s in ((a, b), (b,))]
    nb = n // B

    def loss(ps, xb, yb):
        h = xb
        for i in range(0, len(ps) - 2, 2):
            h = jax.nn.relu(h @ ps[i] + ps[i + 1])
        f = h @ ps[-2] + ps[-1]
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(f), yb[:, None], 1))

    @jax.jit
    def sgd_epoch(key, ps, X, y):
        perm = jax.random.permutation(key, n)[: nb * B].reshape(nb, B)

        def body(ps, idx):
            g = jax.grad(loss)(ps, X[idx], y[idx])
            return [p - 0.1 * d for p, d in zip(ps, g)], None

        return jax.lax.scan(body, ps, perm)[0]

    def once(f):
        t0 = time.perf_counter()
        jax.block_until_ready(f())
        return time.perf_counter() - t0

    def bare():
        return sgd_epoch(jax.random.key(0), params, X, y)

    config = BNNConfig(d_in=784, d_out=10, widths=(width, width), prior="horseshoe", prior_hyper={"scale": 0.5},
                       activation="relu", global_scale="fixed")
    variants = {}
    for name, noise, noisy in (("sghmc_no_noise", "gaussian", False), ("sghmc_gaussian", "gaussian", True),
                               ("sghmc_gaussian_threefry", "gaussian_threefry", True),
                               ("sghmc_rademacher", "rademacher", True)):
        runner = _Runner(config, X, y, MinibatchSettings(method="sghmc", num_epochs=2, noise=noise))
        state = runner.init_state(jax.random.key(1))
        step = runner.epoch_fn(noisy)
        variants[name] = (lambda step=step, state=state: step(state)[0].position)
    for f in (bare, *variants.values()):  # compile everything first
        once(f)
    times = {name: [] for name in ("bare_sgd", *variants)}
    for _ in range(reps):
        for name, f in variants.items():
            times["bare_sgd"].append(once(bare))
            times[name].append(once(f))
    out = {"width": width, "n": n, "reps": reps, "bare_sgd": float(np.median(times["bare_sgd"]))}
    for name in variants:
        bare_paired = times["bare_sgd"][list(variants).index(name)::len(variants)]
        out[name] = float(np.median(times[name]))
        out[f"{name}_ratio"] = float(np.median(np.asarray(times[name]) / np.asarray(bare_paired)))
    # the paper's protocol: half the epochs without noise, half with
    out["protocol_gaussian_ratio"] = 0.5 * (out["sghmc_no_noise_ratio"] + out["sghmc_gaussian_ratio"])
    out["minutes_per_100_epochs_gaussian"] = 50 * (out["sghmc_no_noise"] + out["sghmc_gaussian"]) * n / 60000 / 60
    return out


def _fmt(v):
    return "    -" if v is None else f"{v:.3f}"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[500])
    ap.add_argument("--priors", default="iid,horseshoe")
    ap.add_argument("--methods", default="sghmc,map")
    ap.add_argument("--runs", default="runs/paper", help="folder of the run folders (reused when present)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--targets", default="paper",
                    help="paper (the specs: each variance's prior taken as a density of its log, as the paper's "
                         "code), posterior (with the Jacobian: the proper posterior), or both")
    ap.add_argument("--speed", action="store_true", help="also time SGHMC epochs against bare SGD")
    ap.add_argument("--no-fits", dest="fits", action="store_false", help="only the speed comparison")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    widths = [200] if args.quick else args.widths  # >= 172: the GBFRY layers skip their small-width branch
    results = {"fits": [], "speed": []}
    targets = ["paper", "posterior"] if args.targets == "both" else args.targets.split(",")
    for t in targets:
        if t not in ("paper", "posterior"):
            ap.error(f"--targets takes paper, posterior or both, got {t!r}")
    jobs = [(width, method, prior, target) for width in (widths if args.fits else ())
            for method in args.methods.split(",") for prior in args.priors.split(",") for target in targets
            if not (prior == "iid" and target == "posterior" and "paper" in targets)  # iid: no variance site
            and (not args.quick or (method, prior) in QUICK_JOBS)]
    for width, method, prior, target in jobs:
        spec = f"paper_fashion_{prior}" if method == "sghmc" else f"paper_fashion_map_{prior}"
        depth = 2 if method == "sghmc" else 4
        suffix = "_posterior" if target == "posterior" else ""
        run = Path(args.runs) / f"{'quick_' if args.quick else ''}{method}_{prior}_{width}{suffix}"
        post, reused = fit_or_load(spec, width, depth, run, quick=args.quick, seed=args.seed, target=target)
        row = {"method": method, "prior": prior, "width": width, "target": target, "run": str(run),
               "reused": reused, **evaluate(post, args.quick)}
        if method == "map":
            alpha = None
        else:
            alpha = [float(post.samples[k].mean()) for k in sorted(post.samples) if k.endswith("_alpha")]
        row["alpha"] = alpha or None
        row["paper"] = PAPER.get((method, prior, width)) or PAPER.get((method, prior, 2000))
        row["paper_width"] = width if (method, prior, width) in PAPER else 2000
        results["fits"].append(row)
        print(f"{method} {prior} p={width}: accuracy {row['accuracy']:.4f}, 80% pruned "
              f"{row['pruned_accuracy'][0.8]:.4f}, distinct {row['distinct_top_images']:.0f}",
              file=sys.stderr)
    if args.speed:
        for width in widths:
            results["speed"].append(speed(width, args.quick))
    if args.json:
        from bayes_mogp.io import json_line
        print(json_line(results, default=str))  # strict JSON: NaN/Inf -> null
        return results
    if results["fits"]:
        head = "method prior     target       p     full    50%    80%    90%    95%    98%    99%  distinct"
        print(head)
        for r in results["fits"]:
            acc = [r["accuracy"]] + [r["pruned_accuracy"][f] for f in FRACTIONS[1:]]
            print(f"{r['method']:6} {r['prior']:9} {r['target']:10} {r['width']:5} " + " ".join(_fmt(a) for a in acc)
                  + f"  {r['distinct_top_images']:7.0f}   ours ({r['draws']} draws, {r['fit_seconds'] or 0:.0f} s)")
            paper = r["paper"] or {}
            row = [paper.get("full")] + [paper.get(f) for f in FRACTIONS[1:]]
            dist = PAPER_DISTINCT.get(r["prior"]) if r["method"] == "sghmc" else None
            print(f"{'':6} {'':9} {'':10} {r['paper_width']:5} " + " ".join(_fmt(a) for a in row)
                  + f"  {dist if dist else '      -':>7}   paper")
    for s in results["speed"]:
        print(f"p = {s['width']}: bare SGD epoch {s['bare_sgd']:.2f} s; SGHMC epoch no noise {s['sghmc_no_noise']:.2f} s "
              f"({s['sghmc_no_noise_ratio']:.2f}x), Gaussian noise {s['sghmc_gaussian']:.2f} s "
              f"({s['sghmc_gaussian_ratio']:.2f}x; JAX's generator {s['sghmc_gaussian_threefry']:.2f} s, "
              f"{s['sghmc_gaussian_threefry_ratio']:.2f}x), two-point noise {s['sghmc_rademacher']:.2f} s "
              f"({s['sghmc_rademacher_ratio']:.2f}x); the paper's protocol (half the epochs noisy, Gaussian) "
              f"{s['protocol_gaussian_ratio']:.2f}x, {s['minutes_per_100_epochs_gaussian']:.1f} min per 100 epochs "
              f"(medians of {s['reps']} paired epochs)")
    return results


if __name__ == "__main__":
    main()
