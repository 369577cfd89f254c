"""``bayes-mogp loggauss``: the law of G = ln(|z^d|^2/n_d) - ln(|x|^2/n_in) for deep ReLU networks.

Draws G by the exact chi-square product (``--method exact``, MLPs only) or by simulating whole networks
(``--method network``; MLP, unequal widths, ResNets) and compares it with the log-Gaussian limit
N(-beta/2, beta) (:mod:`bayes_mogp.depth_width`).  ``--plot FILE`` also draws the figure of the notes (after Hanin & Nica 2020):
densities of ln|z_out|^2 at depths 1, 10, 100 with the log-Gaussian and infinite-width predictions.
"""

from __future__ import annotations

import time

from ._common import UsageError, log, progress

NAME = "loggauss"
HELP = "log-Gaussian law of deep ReLU networks / ResNets: exact sampler or network simulation vs beta"
DESCRIPTION = (
    "Sample G = ln(|z^d|^2/n_d) - ln(|x|^2/n_in) of a deep ReLU network at initialisation and compare it "
    "with the log-Gaussian limit N(-beta/2, beta), beta = 5 sum_{l<d} 1/n_l + 2/n_d "
    "(ResNet: 2/n + (5 lam^4 + 4 alpha^2 lam^2) d/n)."
)


def _int_list(text: str):
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"expected comma-separated integers, got {text!r}") from None


def add_arguments(parser):
    parser.add_argument("--width", type=int, default=100, help="hidden width n (default 100)")
    parser.add_argument("--depth", type=int, default=None, help="number of hidden layers d (default 10)")
    parser.add_argument("--widths", type=str, default=None,
                        help="unequal widths n_0,...,n_d (depth + 1 values, one per hidden vector z^0..z^d)")
    parser.add_argument("--resnet-alpha", type=float, default=None,
                        help="ResNet skip weight alpha in [0, 1] (lambda = sqrt(1 - alpha^2)); needs --method network")
    parser.add_argument("--resnet-variant", choices=("standard", "balanced"), default="standard",
                        help="standard ReLU ResNet of the notes, or the balanced ResNet (random sign per "
                        "neuron) for which the beta formula holds (default standard)")
    parser.add_argument("--n-in", type=int, default=10, help="input dimension (default 10); x = ones")
    parser.add_argument("--n-out", type=int, default=10, help="output dimension (default 10)")
    parser.add_argument("--samples", type=int, default=2**15, help="number of draws (default 2^15)")
    parser.add_argument("--method", choices=("exact", "network"), default="exact",
                        help="exact chi-square product (MLP) or brute-force network simulation (default exact)")
    parser.add_argument("--chunk-size", type=int, default=256, help="networks per batch for --method network")
    parser.add_argument("--plot", type=str, default=None, metavar="FILE",
                        help="also save the figure of the notes (densities of ln|z_out|^2 at --plot-depths)")
    parser.add_argument("--plot-depths", type=str, default="1,10,100", help="depths for --plot (default 1,10,100)")
    parser.add_argument("--max-minutes", type=float, default=60.0,
                        help="refuse a run whose estimated time exceeds this (default 60); the estimate "
                        "(bayes_mogp.depth_width.estimate_cost) is checked before any sampling")


def _sample(key, widths, args, alpha):
    from .. import depth_width as dw

    depth = len(widths) - 1
    if args.method == "exact":
        n_chunks, n_blocks = dw.exact_work_units(depth, args.samples)
        bar = lambda it: progress(it, total=n_chunks * n_blocks, desc=f"exact sampler d={depth}")  # noqa: E731
        return dw.sample_output_log_norm_exact(key, widths, args.samples, n_in=args.n_in, n_out=args.n_out,
                                               progress=bar)
    n_chunks = -(-args.samples // args.chunk_size)
    ns = dw.simulate_network(key, widths, args.samples, n_in=args.n_in, n_out=args.n_out, alpha=alpha,
                             resnet=args.resnet_variant, chunk_size=args.chunk_size,
                             progress=lambda it: progress(it, total=n_chunks, desc=f"networks d={depth}"))
    return ns.g, ns.log_out_sq


def _available_memory() -> float:
    """Bytes of memory available to a new allocation: MemAvailable (Linux), else the physical memory."""
    import os

    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return float("inf")


def _human_time(seconds: float) -> str:
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.2g} s"


def _human_bytes(n: float) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n / 1024:.3g} KiB"


def check_size(args, width, depth, widths) -> dict:
    """Price the run (:func:`bayes_mogp.depth_width.estimate_cost`, main draws and ``--plot`` depths) and
    refuse it, with the estimate, if it exceeds ``--max-minutes`` or the available memory."""
    from .. import depth_width as dw

    common = dict(n_in=args.n_in, n_out=args.n_out, chunk_size=args.chunk_size)
    est = dw.estimate_cost(args.method, args.samples, width=width, depth=depth, widths=widths, **common)
    for d in _int_list(args.plot_depths) if args.plot else []:
        extra = dw.estimate_cost(args.method, args.samples, width=args.width, depth=d, **common)
        est = {k: est[k] + extra[k] if k != "bytes" else max(est[k], extra[k]) for k in est}
    unit = "layer draws" if args.method == "exact" else "weights"
    rate = dw.EXACT_LAYERS_PER_SECOND if args.method == "exact" else dw.NETWORK_WEIGHTS_PER_SECOND
    memory = _available_memory()
    what = (f"--method {args.method}: {est['draws']:.3g} {unit}, about {_human_time(est['seconds'])} at "
            f"{rate:.0e}/s and {_human_bytes(est['bytes'])} of memory")
    if est["bytes"] > memory or est["seconds"] > 60 * args.max_minutes:
        over = (f"more memory than the {_human_bytes(memory)} available" if est["bytes"] > memory
                else f"over --max-minutes {args.max_minutes:g}")
        raise UsageError(f"{what}: {over}; reduce --samples, --depth or --width"
                         + (", or --chunk-size" if args.method == "network" and est["bytes"] > memory else "")
                         + (", or raise --max-minutes" if est["bytes"] <= memory else ""))
    if est["seconds"] > 10:
        log(f"loggauss {what} (estimate)")
    return est


def run(args) -> dict:
    import jax

    from .. import depth_width as dw
    from ..validation import check_in_interval, check_int

    check_int("samples", args.samples, minimum=2)
    check_int("n_in", args.n_in, minimum=1)
    check_int("n_out", args.n_out, minimum=1)
    check_int("chunk_size", args.chunk_size, minimum=1)
    if not args.max_minutes > 0:
        raise UsageError(f"--max-minutes must be > 0, got {args.max_minutes}")
    plot_depths = _int_list(args.plot_depths) if args.plot else []
    for d in plot_depths:
        check_int("plot-depths", d, minimum=0)
    given = None
    if args.widths is not None:
        given = dw.as_widths(depth=args.depth, widths=_int_list(args.widths))
    else:
        depth = check_int("depth", 10 if args.depth is None else args.depth, minimum=0)
        check_int("width", args.width, minimum=1)
    alpha = None
    if args.resnet_alpha is not None:
        alpha = check_in_interval("resnet-alpha", args.resnet_alpha, 0.0, 1.0)
        if given is not None and len(set(given)) != 1:
            raise UsageError(f"--resnet-alpha needs equal widths, got --widths {args.widths}")
        if args.method == "exact":
            raise UsageError("a ResNet has no exact product form: use --method network (the beta formula is "
                             "still reported as theory_mean/theory_var)")
    # price the run before building anything of size depth or samples: refuse what cannot finish
    check_size(args, None if given else args.width, None if given else depth, given)
    widths = given if given is not None else dw.as_widths(args.width, depth)
    depth = len(widths) - 1

    beta = dw.beta_mlp(widths) if alpha is None else dw.beta_resnet(widths[0], depth, alpha)
    key = jax.random.key(args.seed)
    t0 = time.perf_counter()
    g, _ = _sample(key, widths, args, alpha)
    seconds = time.perf_counter() - t0
    summ = dw.summarize_g(g, beta)
    theory_mean, theory_var = dw.log_gaussian_moments(beta)
    exact_mean = exact_var = so_mean = so_var = None
    if alpha is None or alpha == 0.0:
        exact_mean, exact_var = dw.exact_moments(widths)
        so_mean, so_var = dw.second_order_moments(widths)
    result = {
        "beta": beta, "mean_G": summ.mean, "var_G": summ.var,
        "theory_mean": theory_mean, "theory_var": theory_var,
        "ks_stat": summ.ks_stat, "ks_pvalue": summ.ks_pvalue, "seconds": seconds,
        "se_mean_G": summ.se_mean, "se_var_G": summ.se_var,
        "exact_mean_G": exact_mean, "exact_var_G": exact_var,
        "second_order_mean_G": so_mean, "second_order_var_G": so_var,
        "zero_outputs": summ.zero_outputs, "method": args.method, "samples": args.samples,
        "width": widths[0] if len(set(widths)) == 1 else None, "depth": depth, "widths": list(widths) if len(set(widths)) > 1 else None,
        "n_in": args.n_in, "n_out": args.n_out, "resnet_alpha": alpha,
        "resnet_variant": args.resnet_variant if alpha is not None else None, "seed": args.seed,
    }
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from ..io import atomic_path

        samples = {}
        for i, d in enumerate(plot_depths):
            log(f"loggauss --plot: sampling d={d} ({args.method})")
            samples[d] = _sample(jax.random.fold_in(key, 1 + i), dw.as_widths(args.width, d), args, None)[1]
        ax = dw.plot_log_norm_densities(samples, width=args.width, n_in=args.n_in, n_out=args.n_out,
                                        label="exact sampler" if args.method == "exact" else "networks")
        ax[0].figure.suptitle(f"ln|z_out|^2, n_in = {args.n_in}, n_out = {args.n_out}, {args.samples} samples "
                              f"({args.method}); red: log-Gaussian, blue: infinite width", fontsize=9)
        ax[0].figure.tight_layout()
        with atomic_path(args.plot) as tmp:
            ax[0].figure.savefig(tmp, dpi=110, format=str(args.plot).rsplit(".", 1)[-1] if "." in str(args.plot) else "png")
        plt.close(ax[0].figure)
        result["plot"] = str(args.plot)
    return result


def format_text(result: dict) -> str:
    lines = [
        f"loggauss ({result['method']}, " + (f"width {result['width']}" if result["widths"] is None else f"widths {result['widths']}") + f", d = {result['depth']}"
        + (f", ResNet alpha = {result['resnet_alpha']} {result['resnet_variant']}" if result["resnet_alpha"] is not None else "")
        + f", {result['samples']} samples, {result['seconds']:.2f} s)",
        f"  beta = {result['beta']:.4f}",
        f"  mean G = {result['mean_G']:.4f} +- {result['se_mean_G']:.4f}   log-Gaussian {result['theory_mean']:.4f}",
        f"  var  G = {result['var_G']:.4f} +- {result['se_var_G']:.4f}   log-Gaussian {result['theory_var']:.4f}",
    ]
    if result["exact_mean_G"] is not None:
        lines.append(f"  exact finite-width moments: mean {result['exact_mean_G']:.4f}, var {result['exact_var_G']:.4f}")
    lines.append(f"  KS against N(-beta/2, beta): D = {result['ks_stat']:.4f}, p = {result['ks_pvalue']:.3g}")
    if result["zero_outputs"]:
        lines.append(f"  {result['zero_outputs']} draws had a zero output (G = -inf), left out")
    if result.get("plot"):
        lines.append(f"  figure: {result['plot']}")
    return "\n".join(lines)
