"""Adaptive tempered SMC against NUTS as the sampler of the MoGP posterior, on the teacher cases.

    uv run python benchmarks/bench_mogp_smc.py [--cases 20,300,1,relu 50,500,3,relu] [--runs 4] [--particles 64]
        [--mcmc-steps 10] [--leapfrog 10] [--target-ess 0.9] [--no-nuts] [--quick] [--json]

Each case is a teacher network of ``benchmarks/bench_mogp_teacher.py`` (same data for the same seed).  On it,
(a) :func:`bayes_mogp.mogp.fit` with the library's defaults (MAP, then NUTS, 4 vectorised chains of 200 + 100) and
(b) :func:`bayes_mogp.mogp.fit` with ``sampler="smc"`` (R independent adaptive tempered SMC runs from the prior, the runs in
place of chains), the same model.  Printed side by side: test RMSE of y, NLL, 90% coverage, R-hat max across
chains / runs over the identified quantities (log marginal likelihood, gp_scale, noise, the sorted kernel weights:
:meth:`bayes_mogp.mogp.MoGPPosterior.diagnostics`) and with five test-prediction means added, seconds (compilation
included) and gradient evaluations (NUTS: leapfrog steps of the sampling phase, plus the warmup's at the sampling
phase's mean, plus the MAP's Adam steps; SMC: leapfrog steps and one initial gradient per HMC move, all runs).  For
SMC also the tempering steps, the mean
acceptance, the relative ESS of the final weights and the log evidence with its standard error across runs.
``--quick``: one tiny case with tiny NUTS and SMC settings (a smoke test); ``--json``: one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from bayes_mogp import metrics, mogp  # noqa: E402
from bayes_mogp.data import teacher_network  # noqa: E402
from bayes_mogp.mogp import smc  # noqa: E402

CASES = ["20,300,1,relu", "50,500,3,relu"]
QUICK_CASES = ["10,100,1,relu"]
QUICK_NUTS = dict(map_steps=200, num_warmup=30, num_samples=20, max_tree_depth=5)
QUICK_SMC = dict(num_particles=16, num_mcmc_steps=2, num_leapfrog=5, target_ess=0.5)


def _scores(post, data, seconds: float) -> dict:
    comps = post.predict_components(data.x_test)
    pred = post.prediction_from_components(*comps)
    s = metrics.score(pred, data.y_test)
    diag = post.diagnostics()
    with_tests = post.diagnostics(data.x_test[:5], components=tuple(c[:, :5] if c.ndim > 1 else c for c in comps))
    return {"rmse": s["rmse"], "nll": s["nll"], "coverage_90": s["coverage_90"], "r_hat_ident": diag["r_hat_max"],
            "r_hat_by_quantity": diag["r_hat_by_quantity"], "r_hat_unidentified_max": diag["r_hat_unidentified_max"],
            "r_hat_with_tests": with_tests["r_hat_max"], "seconds": seconds,
            "log_lik_per_chain": with_tests["per_chain"]["log_likelihood_mean"],
            "log_lik_sd_per_chain": np.std(post.samples["log_marginal_likelihood"], axis=1).tolist()}


def run_nuts(data, seed: int, settings: dict) -> dict:
    t0 = time.perf_counter()
    post = mogp.fit(jax.random.key(seed), data, **settings)
    seconds = time.perf_counter() - t0
    st, ps = post.stats, post.settings
    steps = int(np.sum(st["num_steps"]))
    per_iteration = steps / (post.num_chains * post.num_draws)
    grads = steps + per_iteration * post.num_chains * ps.num_warmup + ps.map_steps
    return {**_scores(post, data, seconds), "gradient_evaluations": int(grads),
            "mean_leapfrog_steps": per_iteration}


def run_smc(data, seed: int, runs: int, config: smc.SMCConfig) -> dict:
    t0 = time.perf_counter()
    post = mogp.fit(jax.random.key(seed), data, sampler="smc", num_chains=runs, smc_particles=config.num_particles,
                    smc_target_ess=config.target_ess, smc_moves=config.num_mcmc_steps,
                    smc_leapfrog=config.num_leapfrog)
    seconds = time.perf_counter() - t0
    return {**_scores(post, data, seconds), **post.sampler_record, "settings": config._asdict()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=CASES, help="d,n,units,activation")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--particles", type=int, default=64)
    ap.add_argument("--mcmc-steps", type=int, default=10)
    ap.add_argument("--leapfrog", type=int, default=10)
    ap.add_argument("--target-ess", type=float, default=0.9)
    ap.add_argument("--no-nuts", action="store_true", help="SMC only")
    ap.add_argument("--quick", action="store_true", help="one tiny case, tiny inference (a smoke test)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    config = smc.SMCConfig(num_particles=args.particles, num_mcmc_steps=args.mcmc_steps, num_leapfrog=args.leapfrog,
                           target_ess=args.target_ess).checked()
    cases, nuts_settings = args.cases, {}
    if args.quick:
        cases, nuts_settings, config = QUICK_CASES, QUICK_NUTS, smc.SMCConfig(**QUICK_SMC)
    rows = []
    for spec in cases:
        d, n, units, act = spec.split(",")
        data = teacher_network(args.seed, d=int(d), n_train=int(n), units=int(units), activation=act).data
        row = {"case": spec, "smc": run_smc(data, args.seed, args.runs, config)}
        print(json.dumps(row), file=sys.stderr, flush=True)
        if not args.no_nuts:
            row["nuts"] = run_nuts(data, args.seed, nuts_settings)
            print(json.dumps({"case": spec, "nuts": row["nuts"]}), file=sys.stderr, flush=True)
        rows.append(row)
    if args.json:
        from bayes_mogp.io import json_line
        print(json_line({"benchmark": "mogp_smc", "device": jax.devices()[0].platform, "runs": args.runs,
                         "rows": rows}))  # strict JSON: NaN/Inf -> null
        return
    print(f"SMC: {args.runs} runs x {config.num_particles} particles, target ESS {config.target_ess}, "
          f"{config.num_mcmc_steps} HMC moves x {config.num_leapfrog} leapfrog per tempering step")
    print(f"{'case':16} {'sampler':7} {'RMSE y':>7} {'NLL':>7} {'cov90':>6} {'R-hat id':>8} {'+tests':>7} "
          f"{'seconds':>8} {'grad evals':>11}  extra")
    for r in rows:
        for name in ("nuts", "smc"):
            if name not in r:
                continue
            m = r[name]
            extra = (f"tempering steps {m['tempering_steps']}, acc {m['mean_acceptance']:.2f}, final ESS "
                     f"{np.round(m['particle_ess'], 2).tolist()}, log Z {m['log_evidence']:.2f} +- "
                     f"{m['log_evidence_se']:.2f}" if name == "smc"
                     else f"leapfrog/iter {m['mean_leapfrog_steps']:.0f}")
            print(f"{r['case']:16} {name:7} {m['rmse']:7.3f} {m['nll']:7.3f} {m['coverage_90']:6.3f} "
                  f"{m['r_hat_ident']:8.2f} {m['r_hat_with_tests']:7.2f} {m['seconds']:8.1f} "
                  f"{m['gradient_evaluations']:11d}  {extra}")


if __name__ == "__main__":
    main()
