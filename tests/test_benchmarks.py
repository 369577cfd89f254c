"""Every benchmark runs in CI's slow pass at its ``--quick --json`` size: exit 0, exactly one strict JSON object
on stdout, the keys its documentation promises, and its ratios equal to the quotients of the timings it
reports (a ratio computed from the wrong pair, or inverted, fails).  Where a benchmark carries an exact
cross-check (the same predictions from two solvers, the same log-likelihood two ways) it is held here too.

Speed itself is not asserted: the benchmarks print it, on whatever machine runs them.  Each runs in a fresh
process in a temporary folder (the BNN benchmarks write run folders under ``runs/``).
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _strict(text):
    def refuse(token):
        raise ValueError(f"not strict JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def _run(name, tmp_path, *extra):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), "--quick", "--json", *extra],
                          capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stdout[-2000:]  # logs and progress bars go to stderr
    return _strict(lines[0])


def _ratio(value, num, den):
    assert value == pytest.approx(num / den, rel=1e-9), (value, num, den)


def _kernels(res):
    assert res["benchmark"] == "kernels" and len(res["rows"]) >= 2
    for row in res["rows"]:
        for label in ("nngp", "nngp+ntk", "gp"):
            r = row[label]
            assert r["ours_s"] > 0 and r["nt_s"] > 0
            _ratio(r["ratio"], r["ours_s"], r["nt_s"])
        assert row["gp"]["mean_rel_diff"] < 1e-8  # our GP and neural-tangents' give the same means


def _depth_width(res):
    _ratio(res["speed_ratio"], res["network_seconds"], res["exact_seconds_median"])
    assert res["ks2_pvalue"] > 1e-4  # the network simulation and the exact sampler agree in law (4-SE level)
    for method in ("exact", "network"):
        m = res[method]
        assert abs(m["mean_G"] - m["exact_mean_G"]) < 4 * m["se_mean_G"], method
        assert m["beta"] == pytest.approx(2 / 30 + 5 * 10 / 30)


def _mogp(res):
    _ratio(res["ratio"], res["median_s_direct_cholesky"], res["median_s_woodbury"])
    assert res["loglik_rel_diff"] < 1e-8  # Woodbury and the direct Cholesky: the same log-likelihood
    _ratio(res["ratio_rotation"], res["median_s_woodbury"], res["median_s_woodbury_float32_rotation"])
    assert res["loglik_rel_diff_float32_rotation"] < 1e-6  # float32 rounding of the rotation only
    _ratio(res["ratio_copy"], res["median_s_woodbury_without_copy"], res["median_s_woodbury"])
    assert res["loglik_rel_diff_copy"] < 1e-12  # the same sums, the eigenbasis laid out differently
    sg = res["sampler_gradient"]
    assert sg["fraction_of_limit"] == pytest.approx(sg["limit_s"] / sg["median_s"], rel=1e-12)
    assert sg["limit_s"] > 0 and sg["chains"] >= 1
    cp = res["class_probabilities"]
    _ratio(cp["ratio"], cp["median_s_logs"], cp["median_s_direct_product"])
    _ratio(cp["ratio_ndtr"], cp["median_s_ndtr"], cp["median_s_direct_product"])
    _ratio(cp["ratio_pairs"], cp["median_s_pairs"], cp["median_s_direct_product"])
    # the same quadrature two ways: equal to rounding wherever a metric can see the probability
    assert cp["max_abs_diff"] < 1e-12 and cp["max_rel_diff_above_min_prob"] < 1e-9


def _iterative_gp(res):
    rows = {(r["n"], r["method"]): r for r in res["rows"]}
    assert {m for _, m in rows} >= {"nt-dense", "ours-cholesky", "ours-cholesky-f64", "ours-cg"}
    rates = res["machine_rates"]
    for (n, method), r in rows.items():
        _ratio(r["fraction_of_limit"], r["limit_seconds"], r["seconds"])
        if method != "ours-cg":  # the dense paths do at least the products and the factorisation
            assert 0 < r["fraction_of_limit"] < 1.0, (method, r["fraction_of_limit"])
        m, d, c = res["n_test"], 784, 10
        mixed = r.get("precision") == "mixed"  # the float32 factorisation is held against the float32 rate
        expected = (2.0 * (n * n + m * n) * d + 2.0 * m * n * c) / rates["dgemm_flops_per_second"] + \
            n**3 / 3.0 / rates["cholesky_float32_flops_per_second" if mixed else "cholesky_flops_per_second"]
        assert r["limit_seconds"] == pytest.approx(expected, rel=1e-12)
        ref = rows.get((n, "nt-dense"))
        if method == "ours-cholesky":
            assert mixed and r["refinements"] >= 1 and r["precision_fallback"] is None
        if method == "ours-cholesky-f64":
            assert r["precision"] == "float64" and r["precision_fallback"] is None
        if method.startswith("ours-cholesky") and ref:
            assert r["max_abs_mean_diff_vs_nt"] < 1e-8 and r["argmax_agreement_vs_nt"] == 1.0
            _ratio(r["seconds_ratio_vs_nt"], r["seconds"], ref["seconds"])
            _ratio(r["seconds_warm_ratio_vs_nt"], r["seconds_warm"], ref["seconds_warm"])
        if method == "ours-cg":
            assert r["converged"] is True and r["residual"] <= res["tol"]
            if ref:
                assert abs(r["accuracy"] - ref["accuracy"]) <= 0.01
    assert 0.5 < res["variance_check"]["correlation"] <= 1.0


def _bnn(res):
    for side in ("ours", "centred"):
        s = res[side]
        _ratio(s["ess_per_second"], s["min_ess"], s["seconds"])
    _ratio(res["ratio_ess_per_second"], res["ours"]["ess_per_second"], res["centred"]["ess_per_second"])


def _bnn_geometry(res):
    iid = res["variants"]["iid"]
    for name, v in res["variants"].items():
        assert v["mean_leapfrog_steps"] >= 1 and v["step_size"] > 0, name
        _ratio(v["steps_ratio_to_iid"], v["mean_leapfrog_steps"], iid["mean_leapfrog_steps"])


def _bnn_regression(res):
    bnn, ridge = res["bnn"], res["ridge"]
    t = res["targets"]
    _ratio(t["rmse_within_5pct_of_ridge"]["value"], bnn["rmse"], ridge["rmse"])
    assert t["rmse_within_5pct_of_ridge"]["met"] == (bnn["rmse"] <= 1.05 * ridge["rmse"])
    assert t["coverage_90_in_82_97"]["met"] == (0.82 <= bnn["coverage_90"] <= 0.97)
    assert t["r_hat_below_1.01"]["met"] == (bnn["r_hat_max"] < 1.01)
    assert t["no_divergences"]["met"] == (bnn["divergences"] == 0)
    assert 0.0 <= bnn["coverage_90"] <= 1.0 and bnn["rmse"] < res["data"]["target_sd"]


def _bnn_svi_vs_nuts(res):
    assert set(res["rows"]) == {"nuts", "nngp"}  # --quick: MILE and SVI run in their own tests and notebooks
    for name, r in res["rows"].items():
        assert 0.0 <= r["accuracy"] <= 1.0 and r["nll"] > 0 and 0.0 <= r["ece"] <= 1.0, name
    assert res["rows"]["nngp"]["accuracy"] > 0.5  # 100 MNIST images: the NNGP is far above chance
    for name in [m for m in ("nuts", "mile") if m in res["rows"]]:
        assert res[f"{name}_meets_nngp_accuracy"] == (res["rows"][name]["accuracy"] >= res["rows"]["nngp"]["accuracy"])
        d = res["details"][name]
        per = d["gradient_evaluations_per_ess"]
        assert per is None or per == pytest.approx(d["gradient_evaluations_total"] / d["test_lpd_ess_bulk"], rel=1e-9)


def _mogp_teacher(res):
    for row in res["rows"]:
        _ratio(row["rmse_ratio_nngp_over_mogp"], row["nngp"]["rmse"], row["mogp"]["rmse"])
        for model in ("mogp", "nngp"):
            assert 0.0 <= row[model]["coverage_90"] <= 1.0 and row[model]["rmse"] > 0
        assert all(-1.0 <= c <= 1.0 for c in row["mogp"]["teacher_cosine"])
        sm = row["mogp"]["sampler"]
        assert 1 <= sm["mean_leapfrog_steps"] <= 2 ** sm["max_tree_depth"] - 1
        _ratio(row["estimate_over_measured"], row["estimated_seconds"], row["mogp"]["seconds"] + row["nngp"]["seconds"])
        assert 1 <= sm["warmup_tree_depth"] <= 12
        assert sm["gradient_evaluations_per_ess"] == pytest.approx(sm["gradient_evaluations_sampling"]
                                                                   / sm["ess_bulk_min"], rel=1e-9)
        # R-hat over the identified quantities and five test predictions, the raw scales and jumps apart
        by = row["mogp"]["r_hat_by_quantity"]
        assert {"kernel_weights", "test_prediction"} <= set(by) and row["mogp"]["r_hat_max"] == max(by.values())
        assert row["mogp"]["r_hat_unidentified_max"] > 0


def _mogp_smc(res):
    for row in res["rows"]:
        for sampler in ("nuts", "smc"):
            m = row[sampler]
            assert 0.0 <= m["coverage_90"] <= 1.0 and m["rmse"] > 0 and m["gradient_evaluations"] > 0
        s, cfg = row["smc"], row["smc"]["settings"]
        moves = sum(s["tempering_steps"]) + res["runs"]  # tempering steps, and the final moves at beta = 1
        assert s["gradient_evaluations"] == moves * cfg["num_particles"] * cfg["num_mcmc_steps"] * (
            cfg["num_leapfrog"] + 1)
        z = s["per_run"]
        assert len(z) == res["runs"] and s["log_evidence"] == pytest.approx(sum(z) / len(z), rel=1e-12)


def _paper_compressibility(res):
    assert {(f["method"], f["prior"]) for f in res["fits"]} == {("map", "horseshoe")}  # --quick: notebook 06 runs SGHMC
    for f in res["fits"]:
        pruned = f["pruned_accuracy"]
        assert list(pruned) == ["0.0", "0.5", "0.8", "0.9", "0.95", "0.98", "0.99"]
        assert pruned["0.0"] == f["accuracy"]  # nothing pruned is the full network
        assert f["accuracy"] > 0.3  # 3 epochs on 2000 images, ten classes
        assert 30 <= f["distinct_top_images"] <= 900  # 30 nodes x 30 images


def _ntk_law(res):
    rows = {r["prior"]: r for r in res["rows"]}
    assert set(rows) == {"iid", "horseshoe"}
    iid, hs = rows["iid"], rows["horseshoe"]
    # iid (He): the limit is the constant 2 E[phi^2 + phi'^2] = 2 on the sphere, and there is no KS test against it
    assert iid["regime"] == "GP" and iid["ks_pvalue"] is None and iid["median_limit"] == pytest.approx(2.0, rel=1e-5)
    # 50 networks of width 100: the median within 10% of the limit (the IQR over median is about 0.1 at this width)
    assert abs(iid["median_finite"] - 2.0) < 0.2 and 0 < iid["iqr_over_median_finite"] < 0.3
    # horseshoe: a random limit, matched in law by the finite networks (fixed seed, 1e-3 level), spread of order one
    assert hs["regime"] == "MoGP" and hs["ks_pvalue"] > 1e-3 and hs["iqr_over_median_limit"] > 1.0
    assert all(r["num_inits"] == res["num_inits"] == 50 for r in res["rows"])


CHECKS = {
    "bench_kernels": _kernels, "bench_depth_width": _depth_width, "bench_mogp": _mogp,
    "bench_iterative_gp": _iterative_gp, "bench_bnn": _bnn, "bench_bnn_geometry": _bnn_geometry,
    "bench_bnn_regression": _bnn_regression, "bench_bnn_svi_vs_nuts": _bnn_svi_vs_nuts,
    "bench_mogp_teacher": _mogp_teacher, "bench_mogp_smc": _mogp_smc, "bench_paper_compressibility": _paper_compressibility,
    "bench_ntk_law": _ntk_law,
}


def test_every_benchmark_has_a_check():
    on_disk = {p.stem for p in (ROOT / "benchmarks").glob("bench_*.py")}
    assert on_disk == set(CHECKS)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CHECKS))
def test_benchmark_runs_quick_and_its_figures_hold(name, tmp_path):
    res = _run(name, tmp_path)
    CHECKS[name](res)
