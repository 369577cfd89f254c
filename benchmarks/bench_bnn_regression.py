"""A horseshoe BNN on a small real regression data set against ridge regression, with diagnostics.

Data: scikit-learn's bundled diabetes data (442 patients, 10 standardised-by-sklearn features, target: a
disease-progression score in its own units, spread 77).  It is written to ``OUT/diabetes.csv`` and read
back with :func:`bayes_mogp.data.load_csv` (target column ``y``, a random 20% test part chosen with
``--seed``): exactly what ``bayes-mogp fit models/bnn_regression_horseshoe.toml --data-csv
OUT/diabetes.csv --target y --out RUN`` does.

* BNN: the spec ``models/bnn_regression_horseshoe.toml`` (one hidden layer of 20 tanh units, regularised
  horseshoe, Gaussian noise learned), NUTS 4 chains x (500 + 500), float32, fitted into ``OUT/run``.
* Ridge: scikit-learn's ``RidgeCV`` on the same standardised training inputs, its penalty chosen by
  5-fold cross-validation on the training part (50 penalties from 1e-3 to 1e3); test RMSE in the same units.

Targets (printed as met / missed): BNN test RMSE within 5% of ridge's, 90% predictive intervals covering
82-97% of test targets, R-hat < 1.01 on the identifiable quantities (sorted lambdas, global scale, noise,
log-likelihood, 50 test predictions), 0 divergences, wall time under 10 minutes.

    uv run python benchmarks/bench_bnn_regression.py [--out runs/diabetes] [--json] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/bench_bnn_regression", help="folder for diabetes.csv and the run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true",
                    help="2 chains x (40 + 40), tree depth 6: a smoke test, not the benchmark")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import jax
    import numpy as np
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import RidgeCV

    from bayes_mogp import bnn
    from bayes_mogp.data import load_csv
    from bayes_mogp.report import report_run

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    raw = load_diabetes()
    names = list(raw.feature_names)
    with open(out / "diabetes.csv", "w") as fh:
        fh.write(",".join(names + ["y"]) + "\n")
        for row, t in zip(raw.data, raw.target):
            fh.write(",".join(f"{v:.10g}" for v in row) + f",{t:.10g}\n")
    data = load_csv(out / "diabetes.csv", target="y", test_fraction=0.2, seed=args.seed)

    xs_tr, xs_te = data.inputs(), data.inputs(data.x_test)
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 50), cv=5).fit(xs_tr, data.y_train[:, 0])
    ridge_rmse = float(np.sqrt(np.mean((ridge.predict(xs_te) - data.y_test[:, 0]) ** 2)))

    run = out / "run"
    if run.exists():
        import shutil

        shutil.rmtree(run)
    over = {"num_warmup": 40, "num_samples": 40, "num_chains": 2, "max_tree_depth": 6} if args.quick else {}
    t0 = time.perf_counter()
    post = bnn.fit(jax.random.PRNGKey(args.seed), "bnn_regression_horseshoe", data, out=run,
                   log=lambda m: print(m, file=sys.stderr, flush=True), **over)
    fit_seconds = time.perf_counter() - t0
    summary = report_run(run)
    scores = post.score(data.x_test, data.y_test)
    result = {
        "data": {"name": "sklearn diabetes", "n_train": data.n_train, "n_test": data.n_test, "d": data.input_dim,
                 "target_sd": float(np.std(data.y_train))},
        "ridge": {"rmse": ridge_rmse, "alpha": float(ridge.alpha_)},
        "bnn": {**scores, "r_hat_max": summary["r_hat_max"], "ess_bulk_min": summary["ess_bulk_min"],
                "divergences": summary["divergences"], "worst": summary.get("worst"),
                "fit_wall_seconds": fit_seconds, "sampling_seconds": post.timings["seconds"],
                "chains": post.num_chains, "draws": post.num_draws, "dtype": post.dtype},
        "run": str(run),
    }
    ratio = scores["rmse"] / ridge_rmse
    result["targets"] = {
        "rmse_within_5pct_of_ridge": {"value": ratio, "met": ratio <= 1.05},
        "coverage_90_in_82_97": {"value": scores["coverage_90"], "met": 0.82 <= scores["coverage_90"] <= 0.97},
        "r_hat_below_1.01": {"value": summary["r_hat_max"], "met": summary["r_hat_max"] < 1.01},
        "no_divergences": {"value": summary["divergences"], "met": summary["divergences"] == 0},
        "under_10_minutes": {"value": fit_seconds, "met": fit_seconds < 600},
    }
    if args.json:
        from bayes_mogp.io import json_line
        print(json_line(result))  # strict JSON: NaN/Inf -> null
    else:
        print(f"diabetes: {data.n_train} train / {data.n_test} test, {data.input_dim} features, target sd "
              f"{result['data']['target_sd']:.1f}")
        print(f"ridge (alpha {ridge.alpha_:.3g} by 5-fold CV)   test RMSE {ridge_rmse:.2f}")
        print(f"BNN horseshoe (NUTS {post.num_chains} x {post.num_draws})  test RMSE {scores['rmse']:.2f}  "
              f"NLL {scores['nll']:.3f}  90% coverage {scores['coverage_90']:.3f}")
        print(f"R-hat max {summary['r_hat_max']:.4f} ({summary.get('worst')} has the smallest ESS, "
              f"{summary['ess_bulk_min']:.0f}), divergences {summary['divergences']}, fit {fit_seconds:.0f} s")
        for name, t in result["targets"].items():
            print(f"  {name:28s} {t['value']!s:>22.22}  {'met' if t['met'] else 'MISSED'}")
    return result


if __name__ == "__main__":
    main()
