"""``bayes-mogp lazy``: is training lazy?  Finite networks under a per-node prior, trained by gradient descent,
against their linearisation and the infinite-width NTK, at several widths (:mod:`bayes_mogp.dynamics`)."""

from __future__ import annotations

import time

from ._common import UsageError, check_budget, progress

NAME = "lazy"
HELP = "lazy training: finite networks vs their linearisation and the NTK across widths, any per-node prior"
DESCRIPTION = (
    "Train networks of eq. (1) (NTK parametrisation, per-node variances drawn from --prior and kept fixed) by "
    "full-batch gradient descent on a toy regression, and measure at each width the distance to the linearised "
    "network, the change of the empirical NTK, and the distance to the infinite-width NTK's prediction, each "
    "with its Monte Carlo error over --num-inits initialisations, and their log-log slopes against width."
)


def _widths(text: str):
    try:
        return [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        raise UsageError(f"--widths: expected integers, got {text!r}") from None


def add_arguments(parser):
    parser.add_argument("--prior", default="iid", help="per-node variance prior (default iid: He weights)")
    parser.add_argument("--widths", default="128,256,512,1024,2048",
                        help="hidden widths, comma-separated (default 128,256,512,1024,2048)")
    parser.add_argument("--depth", type=int, default=1, help="hidden layers (default 1)")
    parser.add_argument("--steps", type=int, default=200, help="gradient-descent steps (default 200)")
    parser.add_argument("--learning-rate", type=float, default=1.0,
                        help="step in units of 1/lambda_max of the network's initial NTK / n (stable below 2; "
                        "default 1)")
    parser.add_argument("--num-inits", type=int, default=16, help="initialisations per width (default 16)")
    parser.add_argument("--n-train", type=int, default=16, help="training points of the toy problem (default 16)")
    parser.add_argument("--n-test", type=int, default=32, help="test points (default 32)")
    parser.add_argument("--input-dim", type=int, default=8, help="input dimension (default 8)")
    parser.add_argument("--activation", default="relu", help="relu or erf (default relu)")
    parser.add_argument("--max-minutes", type=float, default=30.0,
                        help="refuse a run whose estimated time exceeds this (default 30)")


def run(args) -> dict:
    import jax

    from ..dynamics import LazySettings, estimate_bytes, estimate_seconds, lazy_training
    from ..priors import PRIOR_NAMES
    from ..validation import check_choice, check_int

    check_choice("prior", args.prior, PRIOR_NAMES)
    widths = [check_int("width", w, minimum=1) for w in _widths(args.widths)]
    if not widths:
        raise UsageError("--widths: give at least one width")
    if not args.max_minutes > 0:
        raise UsageError(f"--max-minutes must be > 0, got {args.max_minutes}")
    settings = LazySettings(depth=args.depth, steps=args.steps, learning_rate=args.learning_rate,
                            num_inits=args.num_inits, n_train=args.n_train, n_test=args.n_test,
                            input_dim=args.input_dim, activation=args.activation)
    estimate = {"seconds": estimate_seconds(widths, settings), "bytes": estimate_bytes(widths, settings)}
    check_budget(f"lazy --prior {args.prior}, widths {widths}, {settings.num_inits} initialisations x "
                 f"{settings.steps} steps", estimate, max_minutes=args.max_minutes,
                 reduce="the widths, --depth or --num-inits")
    t0 = time.perf_counter()
    result = lazy_training(jax.random.key(args.seed), args.prior, widths, settings,
                           progress=lambda it: progress(it, total=len(widths), desc=f"lazy {args.prior}"))
    result.update(seconds=time.perf_counter() - t0, estimated_seconds=estimate["seconds"], seed=args.seed)
    return result


def format_text(result: dict) -> str:
    se = result["stderr"]
    lines = [f"lazy training, {result['prior']} prior ({result['regime']} regime), depth {result['settings']['depth']}, "
             f"{result['settings']['num_inits']} initialisations x {result['settings']['steps']} steps, "
             f"{result['seconds']:.1f} s",
             f"{'width':>7} {'|f - f_lin|':>16} {'NTK change':>16} {'|f - f_NTK|':>16} {'NTK spread':>12} "
             f"{'|mean f - ensemble|':>20}"]
    for i, w in enumerate(result["widths"]):
        lines.append(f"{w:>7} {result['linearisation_distance'][i]:>8.4f} +-{se['linearisation_distance'][i]:<6.4f}"
                     f"{result['ntk_change'][i]:>8.4f} +-{se['ntk_change'][i]:<6.4f}"
                     f"{result['ntk_prediction_error'][i]:>8.4f} +-{se['ntk_prediction_error'][i]:<6.4f}"
                     f"{result['ntk_init_spread'][i]:>8.3f}{result['ntk_ensemble_mean_distance'][i]:>17.4f}")
    lines.append(f"log-log slope against width: linearisation {result['slope']:.3f} +- {se['slope']:.3f}, "
                 f"NTK change {result['slope_ntk_change']:.3f} +- {se['slope_ntk_change']:.3f}, "
                 f"NTK prediction {result['slope_ntk_prediction_error']:.3f} +- "
                 f"{se['slope_ntk_prediction_error']:.3f}")
    lines.append(f"reference NTK: {result['ntk_reference']}")
    if any(result["dead_networks"]):
        lines.append(f"networks with no live node (left out): {result['dead_networks']}")
    if any(result["diverged_networks"]):
        lines.append(f"networks whose training diverged (left out): {result['diverged_networks']}")
    return "\n".join(lines)
