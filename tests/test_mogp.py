"""MoGP: Woodbury likelihood against a direct Cholesky, random-kernel prior, regression, CLI errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayes_mogp.mogp import likelihood as lk


def _problem(n=40, c=3, j=5, m=7, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + m, 6))
    k_all = x @ x.T / 6 + 0.5 * np.exp(-0.5 * ((x[:, None] - x[None]) ** 2).sum(-1) / 4)
    phi_all = np.maximum(x @ rng.normal(size=(6, j)), 0)
    y = rng.normal(size=(n, c))
    lam = rng.gamma(0.5, 1.0, size=j)
    return k_all, phi_all, y, lam, n


def test_woodbury_matches_direct_cholesky():
    k_all, phi_all, y, lam, n = _problem()
    base = lk.eigen_base(k_all[:n, :n], y)
    for scale, noise in [(1.0, 0.1), (0.3, 1e-3), (2.0, 1.0)]:
        a = lk.woodbury_log_likelihood(base, scale, noise, jnp.asarray(lam), jnp.asarray(phi_all[:n]))
        b = lk.direct_log_likelihood(jnp.asarray(k_all[:n, :n]), y, scale, noise, jnp.asarray(lam),
                                     jnp.asarray(phi_all[:n]))
        # both float64 on a kernel with condition number < 1e5: agreement to ~1e-10 relative
        np.testing.assert_allclose(a, b, rtol=1e-9)


def test_woodbury_gradient_matches_direct():
    k_all, phi_all, y, lam, n = _problem(seed=1)
    base = lk.eigen_base(k_all[:n, :n], y)
    kphi = jnp.asarray(k_all[:n, :n])

    def f(params, which):
        s, noise, lam_, phi = params
        if which == "w":
            return lk.woodbury_log_likelihood(base, s, noise, lam_, phi)
        return lk.direct_log_likelihood(kphi, y, s, noise, lam_, phi)

    p = (0.7, 0.05, jnp.asarray(lam), jnp.asarray(phi_all[:n]))
    gw = jax.grad(f)(p, "w")
    gd = jax.grad(f)(p, "d")
    for a, b in zip(jax.tree.leaves(gw), jax.tree.leaves(gd)):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)


def test_zero_jumps_and_empty_network_are_the_gp():
    k_all, phi_all, y, lam, n = _problem(seed=2)
    base = lk.eigen_base(k_all[:n, :n], y)
    a = lk.woodbury_log_likelihood(base, 1.0, 0.1, jnp.zeros(5), jnp.asarray(phi_all[:n]))
    b = lk.woodbury_log_likelihood(base, 1.0, 0.1, jnp.zeros(0), jnp.zeros((n, 0)))
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_predict_matches_dense_gp_posterior():
    k_all, phi_all, y, lam, n = _problem(seed=3)
    scale, noise = 0.8, 0.2
    base = lk.eigen_base(k_all[:n, :n], y)
    pbase = lk.predict_base(base, k_all[:n, n:], np.diag(k_all[n:, n:]))
    mean, var = lk.predict(base, pbase, scale, noise, jnp.asarray(lam), jnp.asarray(phi_all[:n]),
                           jnp.asarray(phi_all[n:]))
    kfull = scale * k_all + (phi_all * lam) @ phi_all.T
    kxx = kfull[:n, :n] + noise * np.eye(n)
    ks = kfull[:n, n:]
    mean_ref = ks.T @ np.linalg.solve(kxx, y)
    var_ref = np.diag(kfull[n:, n:]) - np.sum(ks * np.linalg.solve(kxx, ks), axis=0)
    np.testing.assert_allclose(mean, mean_ref, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(var, var_ref, rtol=1e-7, atol=1e-10)


def test_eigen_base_refuses_nan():
    k_all, phi_all, y, lam, n = _problem()
    y = y.copy()
    y[0, 0] = np.nan
    with pytest.raises(ValueError, match="y contains 1 NaN"):
        lk.eigen_base(k_all[:n, :n], y)


def test_finite_networks_converge_in_law_to_the_random_kernel_sampler():
    """KS on K(x, x), K(x, x') and one output: width 2000 matches the limit sampler, width 5 does not.

    1000 draws each: the KS test has power ~1 against the width-5 law (p < 1e-20 at 2000 draws) and
    level 1e-3 under the null; horseshoe (model (d)) because its tail makes the GP-vs-MoGP gap largest.
    """
    from scipy.stats import ks_2samp

    from bayes_mogp.mogp.prior import finite_width_kernel, sample_outputs, sample_random_kernel
    from bayes_mogp.priors import get_prior

    x = np.array([[1.0, 0.5, -0.3], [0.2, -1.0, 0.8]])
    lim = get_prior("horseshoe", 10).limit
    keys = jax.random.split(jax.random.PRNGKey(0), 1000)
    rk = jax.vmap(lambda k: sample_random_kernel(k, x, lim, num_jumps=100).kernel)(keys)
    zk = jax.vmap(lambda k, K: sample_outputs(k, K, 2))(keys, rk)
    for width, close in [(5, False), (2000, True)]:
        prior = get_prior("horseshoe", width)
        fk = jax.vmap(lambda k: finite_width_kernel(k, x, prior))(jax.random.split(jax.random.PRNGKey(1), 1000))
        zf = jax.vmap(lambda k, K: sample_outputs(k, K, 2))(keys, fk)
        pvals = [ks_2samp(rk[:, 0, 0], fk[:, 0, 0]).pvalue, ks_2samp(rk[:, 0, 1], fk[:, 0, 1]).pvalue,
                 ks_2samp(zk[:, 0, 0], zf[:, 0, 0]).pvalue]
        if close:
            assert min(pvals[:2]) > 1e-3 and pvals[2] > 1e-3, pvals
        else:
            assert min(pvals[:2]) < 1e-6, pvals


def test_random_kernel_deep_chain_and_truncation_report():
    from bayes_mogp.mogp.prior import sample_random_kernel
    from bayes_mogp.priors import get_prior

    x = np.random.default_rng(0).normal(size=(6, 4))
    lim = get_prior("horseshoe", 10).limit
    rk = sample_random_kernel(jax.random.PRNGKey(3), x, lim, num_jumps=50, depth=3)
    assert rk.jumps.shape == (3, 50) and np.all(np.diff(rk.jumps, axis=1) <= 0)
    assert np.all(np.linalg.eigvalsh(np.asarray(rk.kernel)) > -1e-8 * np.trace(rk.kernel))
    # more jumps, smaller remainder share (the truncation error goes to 0 as J grows)
    shares = [float(sample_random_kernel(jax.random.PRNGKey(3), x, lim, num_jumps=j).remainder_share[0])
              for j in (5, 50, 300)]
    assert shares[0] > shares[1] > shares[2] and shares[2] < 0.05, shares
    with pytest.raises(ValueError, match="num_jumps must be an integer >= 1, got 0"):
        sample_random_kernel(jax.random.PRNGKey(0), x, lim, num_jumps=0)


@pytest.mark.parametrize("argv, message", [
    (["--prior", "no_such_prior"], "prior name must be one of"),
    (["--num-jumps", "0"], "--num-jumps must be an integer >= 1, got 0"),
    (["--data-npz", "NAN"], "x_train contains 1 NaN/Inf"),
])
def test_cli_user_errors_are_one_line_exit_2(argv, message, tmp_path, capsys):
    from bayes_mogp.cli.main import main

    if "NAN" in argv:
        x = np.ones((20, 5))
        x[3, 2] = np.nan
        path = tmp_path / "d.npz"
        np.savez(path, x_train=x, labels_train=np.arange(20) % 10, x_test=np.ones((4, 5)), labels_test=np.arange(4))
        argv = ["--data-npz", str(path)]
    assert main(["mogp", *argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


@pytest.mark.slow  # notebook 03 runs the same path (fit_map, run_nuts, predict_draws) in CI
def test_regression_runs_and_predictive_is_a_mixture(tmp_path):
    """Tiny end-to-end fit (n = 60): MAP then NUTS; predictive probabilities are distributions and the
    mixture mean is the average of the per-draw GP means."""
    from bayes_mogp.mogp import regression as rg
    from bayes_mogp.priors import get_prior

    rng = np.random.default_rng(0)
    labels = np.arange(80) % 3
    x = rng.normal(size=(80, 6)) + 2.0 * np.eye(6)[labels]
    y = np.eye(3)[labels[:60]] - 0.1
    sigma = x @ x.T / 6
    from bayes_mogp.kernels import activation_expectation

    kphi = np.asarray(activation_expectation("relu", jnp.asarray(sigma)))
    prob = rg.build_problem(kphi, sigma, y, 60, rank=6)
    lim = get_prior("horseshoe", 10).limit
    kw = dict(problem=prob, limit=lim, num_jumps=3)
    params, losses = rg.fit_map(jax.random.PRNGKey(0), kw, steps=100)
    assert losses[-1] < losses[0]
    mc = rg.run_nuts(jax.random.PRNGKey(1), kw, num_warmup=20, num_samples=10, num_chains=1,
                     init_params=params, max_tree_depth=5)
    s = mc.get_samples()
    assert s["jumps"].shape == (10, 3) and np.all(np.diff(np.asarray(s["jumps"]), axis=1) <= 0)
    means, var, noise = rg.predict_draws(prob, lim, s)
    mean, v, p = rg.mixture_predictive(means, var, noise)
    np.testing.assert_allclose(np.sum(p, -1), 1.0, rtol=1e-10)
    np.testing.assert_allclose(mean, np.mean(means, 0), rtol=1e-12)
    met = rg.classification_metrics(p, labels[60:])
    assert met["accuracy"] >= 0.8  # well-separated clusters (NNGP gets 1.0 here); chance is 1/3
    # the pruned network (GP part dropped, J features kept) still predicts
    pm, _, _ = rg.predict_draws(prob, lim, s, gp_part=False)
    assert pm.shape == means.shape and np.all(np.isfinite(pm))


def test_class_probabilities_match_monte_carlo():
    from bayes_mogp.mogp.regression import class_probabilities

    rng = np.random.default_rng(0)
    mean = rng.normal(size=(4, 5))
    var = rng.uniform(0.1, 1.0, size=4)
    p = np.asarray(class_probabilities(jnp.asarray(mean), jnp.asarray(var)))
    z = mean[None] + np.sqrt(var)[None, :, None] * rng.normal(size=(100000, 4, 5))
    mc = np.stack([(z.argmax(-1) == k).mean(0) for k in range(5)], -1)
    # Monte Carlo standard error <= sqrt(0.25 / 1e5) = 1.6e-3: 5 sigma
    np.testing.assert_allclose(p, mc, atol=8e-3)


def test_cli_spec_fills_unset_flags_and_flags_override(tmp_path):
    """`mogp SPEC`: the spec's settings replace the built-in defaults; an explicit flag beats the spec."""
    import argparse

    from bayes_mogp.cli import mogp as cmd

    parser = argparse.ArgumentParser()
    cmd.add_arguments(parser)
    args = parser.parse_args(["mogp_fashion_beta", "--num-chains", "3"])
    cmd.resolve_settings(args)
    assert (args.dataset, args.prior, args.num_chains, args.rank) == ("fashion", "beta", 3, 32)
    args = parser.parse_args([])
    cmd.resolve_settings(args)
    assert {k: getattr(args, k) for k in cmd.DEFAULTS} == cmd.DEFAULTS


def test_cli_spec_with_unknown_key_is_one_line_exit_2(tmp_path, capsys):
    from bayes_mogp.cli.main import main

    bad = tmp_path / "mogp_bad.toml"
    bad.write_text('[model]\nprior = "horseshoe"\nwidth = 3\n')
    assert main(["mogp", str(bad), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "[model] has unknown key(s) ['width']" in err[0], err


def test_likelihood_gradient_is_finite_when_some_jumps_are_exactly_zero():
    """A finite Levy measure (Bernoulli) gives jumps equal to 0: the Woodbury likelihood and its gradient
    stay finite there and the likelihood equals the direct Cholesky one."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 3))
    k_phi = x @ x.T / 3 + 0.1 * np.eye(12)
    y = rng.normal(size=(12, 2))
    phi = jnp.asarray(rng.normal(size=(12, 3)))
    base = lk.eigen_base(k_phi, y)
    lam = jnp.asarray([0.7, 0.0, 0.0])
    ll, grad = jax.value_and_grad(lambda l: lk.woodbury_log_likelihood(base, 0.5, 0.1, l, phi))(lam)
    assert np.all(np.isfinite(np.asarray(grad))), grad
    np.testing.assert_allclose(ll, lk.direct_log_likelihood(jnp.asarray(k_phi), y, 0.5, 0.1, lam, phi), rtol=1e-10)


def test_cli_json_end_to_end_on_own_data(tmp_path, capsys):
    """`mogp --data-npz --json` (n = 60, 2 chains, a few draws): exactly one JSON object on stdout with the issue's
    keys, per-chain diagnostics that agree with the pooled ones, and the InferenceData written."""
    import json

    import arviz as az

    from bayes_mogp.cli.main import main

    rng = np.random.default_rng(0)
    labels = np.arange(90) % 3
    x = rng.normal(size=(90, 8)) + 2.5 * np.eye(8)[labels]
    path = tmp_path / "d.npz"
    np.savez(path, x_train=x[:60], labels_train=labels[:60], x_test=x[60:], labels_test=labels[60:])
    out = tmp_path / "runs"
    assert main(["mogp", "--data-npz", str(path), "--json", "-J", "3", "--rank", "6", "--depth", "1",
                 "--map-steps", "100", "--num-warmup", "15", "--num-samples", "15", "--max-tree-depth", "4",
                 "--out", str(out), "--seed", "1"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res["results"]) == {"mogp", "nngp"}
    for name in ("mogp", "nngp"):
        assert set(res["results"][name]) >= {"accuracy", "nll", "ece", "seconds"}
    d = res["diagnostics"]
    assert set(d) >= {"r_hat_max", "ess_bulk_min", "divergences", "per_chain"}
    pc = d["per_chain"]
    assert len(pc["accuracy"]) == len(pc["log_likelihood_mean"]) == 2
    idata = az.from_netcdf(res["inference_data"])
    ll = np.asarray(idata.posterior["log_likelihood"])  # (chains, draws)
    np.testing.assert_allclose(pc["log_likelihood_mean"], ll.mean(1), rtol=1e-10)
    acc = res["results"]["mogp"]["accuracy"]
    assert acc >= 0.8  # separated clusters; chance is 1/3
    assert abs(acc * 30 - round(acc * 30)) < 1e-12  # a float64 fraction of the 30 test points, not float32 noise
    assert res["active_features"]["num_jumps"] == 3 and res["dataset"] == "npz:d.npz"


def test_per_chain_summary_shapes_and_errors():
    from bayes_mogp.mogp import regression as rg

    ll = np.array([[1.0, 3.0], [10.0, 10.0]])
    means = np.zeros((2, 2, 3, 2))
    means[0, :, :, 1] = 1.0  # chain 0 always predicts class 1, chain 1 class 0
    s = rg.per_chain_summary(ll, means, np.array([1, 1, 0]))
    assert s == {"log_likelihood_mean": [2.0, 10.0], "accuracy": [2 / 3, 1 / 3]}
    with pytest.raises(ValueError, match="log_likelihood must be"):
        rg.per_chain_summary(ll[0], means, np.array([1, 1, 0]))
