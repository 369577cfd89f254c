"""Time per likelihood gradient: Woodbury after one eigendecomposition vs a direct n x n Cholesky; and the
class probabilities of a MoGP classification's draws, the library's running product against the same quadrature
through logarithms, against the product with ``ndtr``'s CDFs and against the product of the C(C-1) CDFs
materialised as one array; the Woodbury gradient with the features
rotated in float32 (the MoGP's default) against float64; and the float64 gradient with the sampler's own copy of
U^T against U as laid out (the rotation contracting over the first axis of the row-major eigenbasis).

Same data, same parameters, both jitted, in one process (absolute times are inflated by other load on
shared machines; the ratio is what to read).  The gradient is with respect to everything NUTS moves:
GP scale, noise, the J jumps and the r-dimensional latents of the J features (rotation included).  The class
probabilities (``class_probabilities`` in the JSON) are those of 16 draws at n test points and C classes, the
cost the MoGP pays per draw on every classification prediction (Gauss-Hermite, 48 nodes).

    uv run python benchmarks/bench_mogp.py [--quick] [--n 1000] [--json]
"""

from __future__ import annotations

import argparse
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from bayes_mogp.mogp import likelihood as lk  # noqa: E402


def _median_time(f, args, repeats):
    jax.block_until_ready(f(*args))  # compile
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(f(*args))
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def _class_probabilities_by_logs(mean, var, num_nodes=48):
    """The same Gauss-Hermite rule as :func:`bayes_mogp.prediction.gaussian_class_probabilities`, with the
    product of normal CDFs taken through logarithms over all C x C pairs (the library's form before it)."""
    from jax.scipy.special import ndtr

    t, w = np.polynomial.hermite.hermgauss(num_nodes)
    t, w = jnp.asarray(t), jnp.asarray(w / np.sqrt(np.pi))
    sd = jnp.sqrt(jnp.maximum(var, 1e-300))[..., None, None]
    f = mean[..., :, None] + np.sqrt(2.0) * sd * t
    z = (f[..., :, None, :] - mean[..., None, :, None]) / sd[..., None]
    logcdf = jnp.log(jnp.clip(ndtr(z), 1e-300, 1.0))
    eye = jnp.eye(mean.shape[-1], dtype=bool)[:, :, None]
    p = jnp.sum(w * jnp.exp(jnp.sum(jnp.where(eye, 0.0, logcdf), axis=-2)), axis=-1)
    return p / jnp.sum(p, axis=-1, keepdims=True)


def _erfc_cdf(x):
    from jax import lax

    return 0.5 * lax.erfc(-np.sqrt(0.5) * x)


def _class_probabilities_pairs(mean, var, num_nodes=48, cdf=_erfc_cdf):
    """The library's quadrature with the C(C-1) CDFs of every node materialised as one (..., m, C, C-1, nodes)
    array and multiplied along its C-1 axis (the library's form before its running product over the classes)."""
    t, w = np.polynomial.hermite.hermgauss(num_nodes)
    a, w = jnp.asarray(np.sqrt(2.0) * t), jnp.asarray(w / np.sqrt(np.pi))
    c = mean.shape[-1]
    sd = jnp.sqrt(jnp.maximum(var, 1e-300))[..., None]
    pairs = np.array([(k, j) for k in range(c) for j in range(c) if j != k])
    delta = (mean[..., pairs[:, 0]] - mean[..., pairs[:, 1]]) / sd
    cdfs = cdf(delta[..., None] + a).reshape(delta.shape[:-1] + (c, c - 1, a.shape[0]))
    p = jnp.sum(w * jnp.prod(cdfs, axis=-2), axis=-1)
    return p / jnp.sum(p, axis=-1, keepdims=True)


def _class_probabilities_ndtr(mean, var, num_nodes=48):
    """The materialised pairs with each CDF from ``jax.scipy.special.ndtr`` (erf and erfc evaluated, one
    selected: the library's form before it took one erfc)."""
    from jax.scipy.special import ndtr

    return _class_probabilities_pairs(mean, var, num_nodes, cdf=ndtr)


def _class_probabilities(n: int, classes: int, reps: int, rng) -> dict:
    from bayes_mogp.metrics import MIN_PROB
    from bayes_mogp.prediction import gaussian_class_probabilities

    mean = jnp.asarray(2.0 * rng.normal(size=(16, n, classes)))
    var = jnp.asarray(rng.uniform(0.01, 0.5, size=(16, n)))
    ours, logs = jax.jit(gaussian_class_probabilities), jax.jit(_class_probabilities_by_logs)
    by_ndtr, pairs = jax.jit(_class_probabilities_ndtr), jax.jit(_class_probabilities_pairs)
    po, pl, pn = np.asarray(ours(mean, var)), np.asarray(logs(mean, var)), np.asarray(by_ndtr(mean, var))
    pp = np.asarray(pairs(mean, var))
    to, tl = _median_time(ours, (mean, var), reps), _median_time(logs, (mean, var), reps)
    tn, tp = _median_time(by_ndtr, (mean, var), reps), _median_time(pairs, (mean, var), reps)
    above = pl >= MIN_PROB  # where a metric can see them
    others = (pl, pn, pp)
    return {"draws": 16, "n": n, "classes": classes, "median_s_direct_product": to, "median_s_logs": tl,
            "median_s_ndtr": tn, "median_s_pairs": tp, "ratio": tl / to, "ratio_ndtr": tn / to,
            "ratio_pairs": tp / to, "max_abs_diff": float(max(np.max(np.abs(po - q)) for q in others)),
            "max_rel_diff_above_min_prob": float(max(np.max(np.abs(po[above] - q[above]) / q[above])
                                                     for q in others))}


def _sampler_gradient(base32, fac, params, chains: int, reps: int) -> dict:
    """The gradient NUTS takes: ``chains`` vectorised chains, the features rotated in float32, against this
    machine's limit for it: the larger of its flops (the rotation and its adjoint, 4 n^2 J per chain, at the rate
    of a square float32 product) and its reads (U^T and U, 4 n^2 bytes each, at the rate of a float32 sum)."""
    n = int(base32.evecs.shape[0])
    s, noise, lam, u = params
    j = int(lam.shape[0])
    rng = np.random.default_rng(1)
    us = jnp.asarray(u[None] + 0.1 * rng.normal(size=(chains,) + u.shape))

    def ll(u_):
        return lk.woodbury_log_likelihood(base32, s, noise, lam, jnp.maximum(fac @ u_.T, 0.0))

    t = _median_time(jax.jit(jax.vmap(jax.grad(ll))), (us,), reps)
    sq = jnp.asarray(rng.normal(size=(n, n)), dtype=jnp.float32)
    sgemm = 2.0 * n**3 / _median_time(jax.jit(lambda a: a @ a), (sq,), max(3, reps // 4))
    big = jnp.asarray(rng.normal(size=(16 * 2**20,)), dtype=jnp.float32)
    reads = big.nbytes / _median_time(jax.jit(jnp.sum), (big,), max(3, reps // 4))
    limit = max(4.0 * n * n * j * chains / sgemm, 2 * 4.0 * n * n / reads)
    return {"chains": chains, "median_s": t, "limit_s": limit, "fraction_of_limit": limit / t,
            "sgemm_flops_per_second": sgemm, "read_bytes_per_second": reads}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--num-jumps", type=int, default=8)
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="n = 300, 5 repeats")
    ap.add_argument("--chains", type=int, default=4, help="vectorised chains of the sampler's gradient (default 4)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    n, reps = (300, 5) if a.quick else (a.n, a.repeats)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 50))
    k_phi = jnp.asarray(x @ x.T / 50 + np.exp(-0.5 * ((x[:, None] - x[None]) ** 2).sum(-1) / 50))
    fac = jnp.asarray(x[:, : a.rank] / np.sqrt(a.rank))
    y = jnp.asarray(rng.normal(size=(n, a.classes)))
    t = time.perf_counter()
    base = lk.eigen_base(k_phi, y)
    jax.block_until_ready(base.evecs)
    t_eig = time.perf_counter() - t
    base32 = lk.with_rotation(base, "float32")  # the MoGP's default: the features rotated in float32
    base64 = lk.with_rotation(base, "float64")  # the sampler's float64 path: with its own copy of U^T
    # ``base`` has no copies: its rotation contracts over the first axis of the row-major U (the code before)
    params = (jnp.asarray(0.5), jnp.asarray(0.05), jnp.asarray(rng.gamma(0.5, size=a.num_jumps)),
              jnp.asarray(rng.normal(size=(a.num_jumps, a.rank))))

    def woodbury(p):
        s, noise, lam, u = p
        return lk.woodbury_log_likelihood(base64, s, noise, lam, jnp.maximum(fac @ u.T, 0.0))

    def woodbury_laid_out(p):
        s, noise, lam, u = p
        return lk.woodbury_log_likelihood(base, s, noise, lam, jnp.maximum(fac @ u.T, 0.0))

    def direct(p):
        s, noise, lam, u = p
        return lk.direct_log_likelihood(k_phi, y, s, noise, lam, jnp.maximum(fac @ u.T, 0.0))

    def woodbury32(p):
        s, noise, lam, u = p
        return lk.woodbury_log_likelihood(base32, s, noise, lam, jnp.maximum(fac @ u.T, 0.0))

    gw, gd = jax.jit(jax.value_and_grad(woodbury)), jax.jit(jax.value_and_grad(direct))
    g32 = jax.jit(jax.value_and_grad(woodbury32))
    glo = jax.jit(jax.value_and_grad(woodbury_laid_out))
    vw, vd, v32, vlo = gw(params)[0], gd(params)[0], g32(params)[0], glo(params)[0]
    tw = _median_time(gw, (params,), reps)
    tlo = _median_time(glo, (params,), reps)
    td = _median_time(gd, (params,), reps)
    t32 = _median_time(g32, (params,), reps)
    sampler = _sampler_gradient(base32, fac, params, a.chains, reps)
    out = {"device": jax.devices()[0].platform, "n": n, "classes": a.classes, "num_jumps": a.num_jumps,
           "rank": a.rank, "median_s_woodbury": tw, "median_s_direct_cholesky": td, "ratio": td / tw,
           "median_s_woodbury_float32_rotation": t32, "ratio_rotation": tw / t32,
           "median_s_woodbury_without_copy": tlo, "ratio_copy": tlo / tw,
           "loglik_rel_diff_copy": float(abs(vlo - vw) / abs(vw)),
           "loglik_rel_diff_float32_rotation": float(abs(v32 - vw) / abs(vw)),
           "one_time_eigendecomposition_s": t_eig, "loglik_rel_diff": float(abs(vw - vd) / abs(vd)),
           "class_probabilities": _class_probabilities(n, a.classes, max(3, reps // 4), rng),
           "sampler_gradient": sampler}
    if a.json:
        from bayes_mogp.io import json_line
        print(json_line(out))  # strict JSON: NaN/Inf -> null
    else:
        print(f"n={n} C={a.classes} J={a.num_jumps} r={a.rank} on {out['device']}")
        print(f"  Woodbury value+grad   median {tw * 1e3:8.3f} ms")
        print(f"  direct Cholesky       median {td * 1e3:8.3f} ms")
        print(f"  ratio direct/Woodbury        {td / tw:8.1f}x   (eigendecomposition once: {t_eig:.2f} s;"
              f" log-lik rel. diff {out['loglik_rel_diff']:.1e})")
        print(f"  Woodbury, float64, U as laid out (no copy of U^T) median {tlo * 1e3:8.3f} ms: the copy is "
              f"{tlo / tw:.2f}x faster (log-lik rel. diff {out['loglik_rel_diff_copy']:.1e})")
        print(f"  Woodbury, float32 rotation  median {t32 * 1e3:8.3f} ms: {tw / t32:.2f}x the float64 rotation"
              f" (log-lik rel. diff {out['loglik_rel_diff_float32_rotation']:.1e})")
        sg = sampler
        print(f"  the sampler's gradient, {sg['chains']} vectorised chains, float32 rotation: median "
              f"{sg['median_s'] * 1e3:.3f} ms; this machine's limit {sg['limit_s'] * 1e3:.3f} ms (sgemm "
              f"{sg['sgemm_flops_per_second'] / 1e9:.0f} Gflop/s, reads {sg['read_bytes_per_second'] / 1e9:.1f} GB/s): "
              f"{sg['fraction_of_limit']:.2f} of it")
        cp = out["class_probabilities"]
        print(f"class probabilities, {cp['draws']} draws x {n} points x {a.classes} classes:")
        print(f"  running product (ours) median {cp['median_s_direct_product'] * 1e3:7.1f} ms")
        print(f"  through logarithms    median {cp['median_s_logs'] * 1e3:8.1f} ms")
        print(f"  with ndtr (erf, erfc) median {cp['median_s_ndtr'] * 1e3:8.1f} ms: {cp['ratio_ndtr']:.2f}x")
        print(f"  pairs materialised    median {cp['median_s_pairs'] * 1e3:8.1f} ms: {cp['ratio_pairs']:.2f}x")
        print(f"  ratio logs/direct            {cp['ratio']:8.2f}x   (largest difference {cp['max_abs_diff']:.1e}, "
              f"relative above the metrics' floor {cp['max_rel_diff_above_min_prob']:.1e})")


if __name__ == "__main__":
    main()
