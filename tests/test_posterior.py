"""The one contract every fitted model keeps (bayes_mogp.posterior.Posterior): NNGP, NTK, MoGP and BNN.

Each kind is fitted once on a small regression problem; the test then predicts, scores, saves, loads the run in
a fresh Python process (float64 not enabled there, as for a new user) and checks that the prediction is the
same to 1e-12, that the InferenceData has the standard groups with the observed data in the user's units, and
that ArviZ's LOO runs on it (the exact LOO for the exact GP, which has no draws).
"""

import json
import subprocess
import sys
import warnings

import arviz as az
import jax
import numpy as np
import pytest

import bayes_mogp
from bayes_mogp import bnn, mogp, nngp
from bayes_mogp.errors import InputError
from bayes_mogp.posterior import Posterior

KINDS = ("nngp", "ntk", "mogp", "bnn")


def _data(n=40, m=10, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + m, 3))
    y = 50.0 + 10.0 * np.sin(x[:, 0]) + rng.normal(size=n + m)  # user units far from standardised ones
    return x[:n], y[:n], x[n:], y[n:]


def _fit(kind, x, y):
    key = jax.random.key(5)
    if kind in ("nngp", "ntk"):
        return nngp.fit(key, x, y, kernel=kind, depth=1)
    if kind == "mogp":
        return mogp.fit(key, x, y, num_jumps=3, map_steps=50, num_warmup=30, num_samples=10, num_chains=1,
                        max_tree_depth=4)
    spec = {"model": {"prior": "inverse_gamma", "widths": [3]},
            "inference": {"num_warmup": 30, "num_samples": 10, "num_chains": 1, "max_tree_depth": 4}}
    return bnn.fit(jax.random.PRNGKey(5), spec, x, y)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """Every kind fitted, saved, and loaded back in one fresh process (one interpreter start for all four)."""
    x, y, xt, yt = _data()
    posts = {kind: _fit(kind, x, y) for kind in KINDS}
    root = tmp_path_factory.mktemp("runs")
    for kind, post in posts.items():
        post.save(root / kind)
    np.save(root / "x.npy", xt)
    out = subprocess.run([sys.executable, "-c", _FRESH, str(root), *KINDS], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    fresh = json.loads(out.stdout.strip().splitlines()[-1])
    return posts, (x, y, xt, yt), root, fresh


_FRESH = """
import json, sys, numpy as np, jax, bayes_mogp
root, kinds = sys.argv[1], sys.argv[2:]
x = np.load(f"{root}/x.npy")
out = {"x64": bool(jax.config.jax_enable_x64)}
for kind in kinds:
    post = bayes_mogp.load(f"{root}/{kind}")
    np.save(f"{root}/{kind}_mean.npy", post.predict(x).mean)
    out[kind] = type(post).__name__
out["x64_after"] = bool(jax.config.jax_enable_x64)
print(json.dumps(out))
"""


@pytest.mark.parametrize("kind", KINDS)
def test_posterior_contract(fitted, kind):
    posts, (x, y, xt, yt), root, fresh = fitted
    post = posts[kind]
    assert isinstance(post, Posterior) and post.task == "regression" and post.input_dim == 3
    pred = post.predict(xt)
    scores = post.score(xt, yt)
    assert set(scores) == {"n", "rmse", "nll", "coverage_90"} and scores["n"] == len(yt)
    assert abs(float(np.mean(pred.mean)) - 50.0) < 10.0  # user units, not standardised
    assert post.seconds is not None and post.seconds > 0
    assert "x_train" not in repr(post) and len(repr(post)) < 200

    # predict never mutates the posterior: the same call twice gives the same numbers
    np.testing.assert_array_equal(post.predict(xt).mean, pred.mean)

    # bad inputs: one InputError naming x
    with pytest.raises(InputError, match="x must have 3 columns"):
        post.predict(xt[:, :2])
    with pytest.raises(InputError, match="x"):
        post.predict(np.where(np.arange(xt.size).reshape(xt.shape) == 0, np.nan, xt))

    # run folder: refused when saved again without overwrite; loaded in a fresh process (float64 never turned
    # on there: it is scoped to the model's own computation), the same prediction to 1e-12
    with pytest.raises(InputError, match="already holds a run"):
        post.save(root / kind)
    assert fresh[kind] == type(post).__name__ and not fresh["x64"] and not fresh["x64_after"]
    np.testing.assert_allclose(np.load(root / f"{kind}_mean.npy"), pred.mean, rtol=1e-12, atol=1e-12)
    back = bayes_mogp.load(root / kind)
    assert back.score(xt, yt) == pytest.approx(scores, rel=1e-12, abs=1e-12)

    # ArviZ: the standard groups, observed data in the user's units, LOO
    idata = post.to_inference_data()
    assert {"posterior", "log_likelihood", "observed_data"} <= set(idata.groups())
    np.testing.assert_allclose(np.ravel(idata.observed_data["y"].values), y, rtol=1e-10)
    n = len(y)
    if kind in ("nngp", "ntk"):
        loo = post.loo()  # exact: the GP has one fitted state, no draws to importance-weight
    else:
        assert "sample_stats" in idata.groups()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Pareto k of 10-draw toy posteriors
            loo = az.loo(idata)
    assert loo.n_data_points == n and np.isfinite(loo.elpd_loo)
