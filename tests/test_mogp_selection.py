"""Settings of the MoGP chosen on the training data (bayes_mogp.mogp.selection).

The held-out score of a fold is checked against a dense GP prediction written out here (the kernel of the fold's
MAP point on train and held-out inputs, solved by numpy); the choice is the table's best row; the grid clips ranks
to what the basis allows; bad arguments are refused by name.  Whether the rule picks good settings is measured on
MNIST and Fashion-MNIST in docs/benchmarks.md, not here.
"""

import jax
import numpy as np
import pytest

from bayes_mogp import mogp
from bayes_mogp.data import teacher_network
from bayes_mogp.errors import InputError, InputTypeError
from bayes_mogp.mogp import selection

TINY = mogp.MoGPSettings(num_jumps=2, map_steps=60)


@pytest.fixture(scope="module")
def teacher():
    return teacher_network(1, d=3, n_train=40, units=1, n_test=10)


def test_grid_clips_ranks_to_the_basis_and_drops_duplicates():
    grid = selection.candidate_grid(50, 3, depths=(1, 2), ranks=(2, 8, 64), num_jumps=(4,))
    assert grid == [(1, 2, 4), (1, 3, 4), (2, 2, 4), (2, 8, 4), (2, 50, 4)]


@pytest.mark.parametrize("kw, match", [
    (dict(criterion="aic"), "criterion"), (dict(folds=1), "folds"), (dict(ranks=()), "ranks"),
    (dict(depths=(0,)), "depths"), (dict(num_jumps=("a",)), "num_jumps")])
def test_bad_arguments_are_refused_by_name(teacher, kw, match):
    with pytest.raises((InputError, InputTypeError), match=match):
        mogp.select_settings(jax.random.key(0), teacher.data, settings=TINY, **kw)


def test_held_out_score_is_the_dense_gp_log_density_at_the_fold_map(teacher):
    """The fold's scores are log N(y_val; K_vt K_tt^-1 y_t, diag(K_vv - K_vt K_tt^-1 K_tv) + noise), point by
    point, with the MAP kernel K = s K_phi + Phi diag(lam) Phi^T built from the same sites."""
    data = teacher.data
    x, yt = np.asarray(data.inputs()), np.asarray(data.targets())
    s = TINY.replace(b_var=1.0)
    limit = mogp.posterior._limit(s.prior, s.prior_hyper)
    fold = np.arange(0, 40, 4)
    key = jax.random.key(3)
    got, correct = selection._held_out_score(s, limit, (1, 3, 2), x, yt, None, fold, key)
    assert correct is None

    train = np.setdiff1d(np.arange(40), fold)
    fmap = mogp.features.build_feature_map(x[train], depth=1, rank=3, w_var=s.w_var, b_var=s.b_var)
    problem = mogp.model.build_problem(fmap, x[train], yt[train])
    sites = selection._map_sites(key, mogp.model.model_kwargs(problem, limit, 2, drift=s.drift), s.map_steps)
    sig2, lam, u = sites["sigma_v2"][0], sites["jumps"][0], sites["features"][0]
    scale = sig2 * (sites["drift"][0] + float(limit.remainder_mean(lam[-1])))
    noise = sites["noise"][0]

    def kern(a, b):
        fa, fb = np.maximum(np.asarray(fmap.basis(a)) @ u.T, 0), np.maximum(np.asarray(fmap.basis(b)) @ u.T, 0)
        return scale * np.asarray(fmap.base_kernel(a, b)) + (fa * sig2 * lam) @ fb.T

    xt, xv = x[train], x[fold]
    ktt = kern(xt, xt) + noise * np.eye(len(train))
    kvt = kern(xv, xt)
    mean = kvt @ np.linalg.solve(ktt, yt[train])
    var = np.diag(kern(xv, xv)) - np.einsum("ij,ji->i", kvt, np.linalg.solve(ktt, kvt.T)) + noise
    want = np.sum(-0.5 * ((yt[fold] - mean) ** 2 / var[:, None] + np.log(2 * np.pi * var)[:, None]), axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)


def test_choice_is_the_best_row_of_its_table(teacher, monkeypatch):
    """The bookkeeping around the folds: every fold of every candidate is scored once with its own key, the score
    is the mean over all n points, and the chosen settings are the best row's (the fold's score itself is checked
    against the dense GP above; stubbed here so that no model is fitted)."""
    calls = []

    def fake(s, limit, cand, x, yt, labels, fold, key, bases=None):
        calls.append((cand, tuple(fold), int(jax.random.key_data(key)[-1]), id(bases)))
        depth, rank, j = cand
        return np.full(len(fold), -1.0 / rank) + 0.001 * fold, None  # rank 3 scores best

    monkeypatch.setattr(selection, "_held_out_score", fake)
    sel = mogp.select_settings(jax.random.key(0), teacher.data, settings=TINY, depths=(1,), ranks=(1, 3, 8),
                               folds=4)
    rows = sel.table
    assert [(r["depth"], r["rank"], r["num_jumps"]) for r in rows] == [(1, 1, 2), (1, 3, 2)]  # 8 clips to d = 3
    assert len(calls) == 8 and len({c[2] for c in calls}) == 8  # 2 candidates x 4 folds, 8 distinct keys
    # one store of eigendecompositions per fold, shared by the candidates (the base kernel ignores the rank)
    assert [c[3] for c in calls[:4]] == [c[3] for c in calls[4:]] and len({c[3] for c in calls}) == 4
    folds = [c[1] for c in calls[:4]]
    assert sorted(i for f in folds for i in f) == list(range(40)) and all(len(f) == 10 for f in folds)
    for r, rank in zip(rows, (1, 3)):
        assert r["score"] == pytest.approx(-1.0 / rank + 0.001 * 19.5, rel=1e-12)  # mean over all 40 points
        assert r["score"] == pytest.approx(np.mean(r["fold_scores"]), rel=1e-12)
    assert (sel.settings.depth, sel.settings.rank, sel.settings.num_jumps) == (1, 3, 2)
    assert sel.settings.map_steps == TINY.map_steps and sel.to_dict()["chosen"] == {"depth": 1, "rank": 3,
                                                                                    "num_jumps": 2}


def test_one_se_rule_ties_within_the_paired_standard_error_and_breaks_them_by_accuracy():
    rng = np.random.default_rng(0)
    base = rng.normal(size=400)
    rows = [{"score": 0.0, "accuracy": 0.80}, {"score": 0.0, "accuracy": 0.83}]
    # candidate 1 scores 0.01 lower on average with pointwise differences of sd 1: SE 0.05, a tie
    noisy = [base, base - 0.01 + rng.normal(size=400)]
    for r, p in zip(rows, noisy):
        r["score"] = float(np.mean(p))
    assert rows[0]["score"] > rows[1]["score"]
    chosen = selection._one_se_rule(rows, noisy, classification=True)
    assert rows[1]["tied"] and chosen is rows[1]  # tied: the higher held-out accuracy wins
    assert selection._one_se_rule(rows, noisy, classification=False) is rows[0]  # regression: the best score
    # the same mean gap with differences of sd 0.01: SE 0.0005, no tie, the best score wins
    sharp = [base, base - 0.01 + 0.01 * rng.normal(size=400)]
    for r, p in zip(rows, sharp):
        r["score"] = float(np.mean(p))
    assert selection._one_se_rule(rows, sharp, classification=True) is rows[0] and not rows[1]["tied"]
    assert rows[1]["se_to_best"] == pytest.approx(np.std(sharp[0] - sharp[1], ddof=1) / 20, rel=1e-12)
