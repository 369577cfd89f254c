r"""Diagnostics and the self-contained HTML report of any run: MCMC, variational, or exact (no draws).

* :func:`diagnostics`: R-hat (rank-normalised split) and ESS bulk/tail on the *identifiable* quantities
  a posterior names (``diagnostic_vars``: e.g. test predictions, total log-likelihood, sorted per-node
  variances, global scales; raw BNN weights are not identified under the permutation and sign
  symmetries of hidden units, so their R-hat is reported but not targeted; likewise the variables a posterior
  names ``unidentified_vars``, such as the MoGP's raw scales and jumps), divergences, E-BFMI, LOO and WAIC.
* :func:`write_report`: PNG plots and one HTML page with the PNGs embedded (base64), plus
  ``summary.json`` with the keys ``r_hat_max, ess_bulk_min, divergences, seconds, ess_per_second``
  (``ess_bulk_min / seconds``) and the test scores the caller passes (``accuracy, nll, ece`` or
  ``rmse, nll, coverage_90``).  What is diagnosed depends on what the run holds:

  - MCMC draws (a ``sample_stats`` group, several chains): everything above, and trace, rank,
    energy and pair plots of the global scales, the largest sorted variances and the log-likelihood;
  - variational draws (no ``sample_stats``: independent draws from a fitted guide): R-hat, ESS and
    divergences do not apply and are ``null``; the ELBO loss curve is plotted instead;
  - no draws (an exact GP posterior): the summary says so and holds the scores only.

* :func:`diagnostic_rule`: which check applies to the run's draws, named in the summary (``diagnostic_rule``,
  ``r_hat_threshold``, ``r_hat_ok``) and the report, where every R-hat above the threshold is shown in red.
* :func:`report_run`: all of it for a run folder of any kind (:func:`bayes_mogp.load`), scored on the
  run's own test part where the posterior carries one (``test_data``).
"""

from __future__ import annotations

import base64
import html
import io
import warnings
from pathlib import Path

import numpy as np

from .io import atomic_path, atomic_write_json, atomic_write_text
from .errors import InputError

__all__ = ["to_inference_data", "identifiable_names", "diagnostics", "worst_rhat", "draws_kind", "diagnostic_rule",
           "WITHIN_CHAIN_METHODS", "rank_normalized_rhat", "write_report", "report_run", "R_HAT_THRESHOLD"]

#: the R-hat above which a run's chains are said not to agree (Vehtari et al. 2021)
R_HAT_THRESHOLD = 1.01

#: minibatch samplers: no accept/reject step, so no divergences or energy
_SG_METHODS = ("sghmc", "sgld", "csgld")
#: ensembles whose chains start in different modes on purpose: R-hat is judged within each chain (member)
WITHIN_CHAIN_METHODS = ("mile",)

_NOT_IDENT_SUFFIX = ("_z", "_g", "_c")


def to_inference_data(samples: dict, stats: dict, *, log_likelihood=None, posterior_predictive=None,
                      observed_data=None):
    """An ``arviz.InferenceData`` from ``(chain, draw, ...)`` draws and NUTS statistics (renamed to ArviZ's
    names, ``lp = -potential_energy``); observed data unbatched."""
    import arviz as az

    from .posterior import stats_to_arviz

    sample_stats = stats_to_arviz(stats)
    return az.from_dict(posterior={k: np.asarray(v) for k, v in samples.items()}, sample_stats=sample_stats or None,
                        log_likelihood=log_likelihood, posterior_predictive=posterior_predictive,
                        observed_data=observed_data)


def identifiable_names(idata) -> list[str]:
    """Default identifiable quantities when a posterior names none: sorted variances, global scales, the
    total log-likelihood and test predictions found in the posterior group."""
    _add_derived(idata)
    post = list(idata.posterior.data_vars)
    names = [v for v in post if v.startswith(("lam_sorted", "tau")) and not v.endswith(_NOT_IDENT_SUFFIX)]
    return names + [v for v in ("log_lik_total", "test_prob", "test_pred") if v in post]


def _add_derived(idata):
    """Add ``log_lik_total`` (and ``test_prob`` from the posterior predictive) to the posterior group."""
    post = idata.posterior
    if "log_likelihood" in idata.groups() and "log_lik_total" not in post and "y" in idata.log_likelihood:
        ll = idata.log_likelihood["y"]
        post["log_lik_total"] = ll.sum([d for d in ll.dims if d not in ("chain", "draw")])
    if "posterior_predictive" in idata.groups() and "test_prob" in idata.posterior_predictive \
            and "test_prob" not in post:
        post["test_prob"] = idata.posterior_predictive["test_prob"]
    return idata


def draws_kind(idata) -> str:
    """``"mcmc"`` (several chains with sampler statistics), ``"independent"`` (draws without sampler
    statistics, e.g. from a variational guide) or ``"none"`` (no posterior draws)."""
    if idata is None or "posterior" not in idata.groups():
        return "none"
    sizes = idata.posterior.sizes
    if sizes.get("chain", 1) * sizes.get("draw", 1) <= 1:
        return "none"
    if "sample_stats" not in idata.groups():
        return "independent"
    return "mcmc"


def diagnostic_rule(kind: str, method: str | None = None, num_chains: int = 1, *,
                    selected_chain: bool = False) -> str:
    """The check that applies to draws of ``kind`` (:func:`draws_kind`) made by ``method`` in ``num_chains`` chains,
    in words; the report and ``summary.json`` carry it as ``diagnostic_rule``.  ``selected_chain``: every chain
    continued from the best warmup chain (:func:`bayes_mogp.nuts.sample`'s ``select_window``)."""
    if kind == "none":
        return "none: a point estimate or an exact posterior, no draws to diagnose"
    if kind == "independent":
        return "none: independent draws from a fitted variational guide (R-hat, ESS and divergences do not apply)"
    if method in WITHIN_CHAIN_METHODS:
        return (f"rank-normalised split R-hat within each of the {num_chains} ensemble members (its two halves) on "
                f"the identifiable quantities, below {R_HAT_THRESHOLD}; the members sit in different modes by design, "
                f"so R-hat across them is reported, not targeted, and the effective sample size is the sum of the "
                f"members'; unadjusted MCLMC has no accept step, so no divergences (its bias is held by the "
                f"energy-error target)")
    if method == "smc":
        return (f"rank-normalised split R-hat across the {num_chains} independent SMC runs (each run's equally "
                f"weighted final particles as one chain) on the identifiable quantities, below {R_HAT_THRESHOLD}; "
                f"with each run's particle ESS and the log evidence's standard error across runs (SMC has no "
                f"divergences to count)")
    if method == "pt":
        return (f"rank-normalised split R-hat across the {num_chains} chains of parallel tempering (the beta = 1 "
                f"replica of each) on the identifiable quantities, below {R_HAT_THRESHOLD}; with the swap acceptance "
                f"of each neighbouring pair of temperatures and each chain's round trips between the coldest and "
                f"the hottest (none: the tempered replicas have not reached the posterior's draws), and no "
                f"divergences counted (fixed-length HMC moves)")
    if num_chains > 1:
        rule = (f"rank-normalised split R-hat across the {num_chains} chains (Vehtari et al. 2021) on the "
                f"identifiable quantities, below {R_HAT_THRESHOLD}")
        if selected_chain:
            rule += (" (every chain continued from the warmup chain of highest log density, so R-hat measures the "
                     "mixing within the mode it found; each chain's warmup log density is in chain_selection)")
    else:
        rule = (f"rank-normalised split R-hat within the one chain (its two halves) on the identifiable quantities, "
                f"below {R_HAT_THRESHOLD}; it cannot see modes the chain never visited: run 4 or more chains")
    if method in _SG_METHODS:
        return rule + "; minibatch SG-MCMC has no accept step, so no divergences, and its step-size bias is unseen"
    return rule + ", and no divergences"


def diagnostics(idata, var_names=None, method: str | None = None, *, unidentified=None) -> dict:
    """R-hat/ESS on ``var_names`` (default :func:`identifiable_names`) and on raw weights, divergences,
    BFMI, LOO, WAIC; ``per_quantity`` gives each quantity's worst R-hat and ESS.  ``unidentified``: posterior
    variables the data do not identify (a posterior's ``unidentified_vars``), whose worst R-hat is reported as
    ``unidentified_r_hat_max``, not targeted.  For a ``method`` of
    :data:`WITHIN_CHAIN_METHODS` every chain is judged on its own (:func:`diagnostic_rule`), and the R-hat across
    chains is ``r_hat_across_chains_max``."""
    import arviz as az

    _add_derived(idata)
    names = [v for v in (var_names or identifiable_names(idata)) if v in idata.posterior]
    if not names:
        raise InputError("no identifiable quantity to diagnose in the posterior group")
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # round_to="none": ArviZ rounds to 2 decimals by default, and an R-hat of 1.006 must not read 1.01
        summ = az.summary(idata, var_names=names, kind="diagnostics", round_to="none")
        if method in WITHIN_CHAIN_METHODS:
            out["r_hat_across_chains_max"] = float(summ["r_hat"].max())
            summ = _within_chains(idata, names)
            out["rule"] = "within_chains"
        out["r_hat_max"] = float(summ["r_hat"].max())
        out["ess_bulk_min"] = float(summ["ess_bulk"].min())
        out["ess_tail_min"] = float(summ["ess_tail"].min())
        # too few draws leave ESS undefined (NaN) everywhere
        out["worst"] = str(summ["ess_bulk"].idxmin()) if summ["ess_bulk"].notna().any() else None
        per = {}
        for name in names:
            s = summ.loc[[i for i in summ.index if i == name or i.startswith(name + "[")]]
            per[name] = {"r_hat_max": float(s["r_hat"].max()), "ess_bulk_min": float(s["ess_bulk"].min()),
                         "ess_tail_min": float(s["ess_tail"].min())}
        out["per_quantity"] = per
        raw = [v for v in idata.posterior.data_vars if v.startswith(("V", "W"))]
        if raw:
            out["raw_weights_r_hat_max"] = worst_rhat(idata.posterior, raw)
        un = [v for v in (unidentified or ()) if v in idata.posterior]
        if un:
            out["unidentified_r_hat_max"] = worst_rhat(idata.posterior, un)
            out["unidentified"] = un
        stats = idata.sample_stats if "sample_stats" in idata.groups() else {}
        out["divergences"] = int(stats["diverging"].sum()) if "diverging" in stats else 0
        if "energy" in stats:
            out["bfmi_min"] = float(np.min(az.bfmi(idata)))
        if "log_likelihood" in idata.groups() and idata.posterior.sizes["draw"] > 1:
            # reff (ESS / draws) from the identifiable quantities: ArviZ's default averages the ESS of every
            # posterior variable, one Python call per scalar (a minute for a 784-100-100 network's weights)
            ess = az.ess(idata, var_names=names, method="mean")
            values = np.concatenate([np.ravel(ess[v].values) for v in names])
            values = values[np.isfinite(values)]
            reff = float(np.clip(np.mean(values) / (idata.posterior.sizes["chain"] * idata.posterior.sizes["draw"]),
                                 1e-3, 1.0)) if values.size else 1.0
            loo = az.loo(idata, reff=reff)
            waic = az.waic(idata)
            out["loo"] = {"elpd": float(loo.elpd_loo), "se": float(loo.se), "p": float(loo.p_loo),
                          "pareto_k_max": float(np.max(loo.pareto_k))}
            out["waic"] = {"elpd": float(waic.elpd_waic), "se": float(waic.se), "p": float(waic.p_waic)}
    return out


def worst_rhat(draws, names) -> float:
    """The largest :func:`rank_normalized_rhat` over every scalar of the ``names`` variables of ``draws`` (a posterior
    group, or a dict of ``(chain, draw, ...)`` arrays); NaN if none is defined."""
    rs = np.concatenate([np.ravel(rank_normalized_rhat(np.asarray(draws[v]))) for v in names])
    return float(np.nanmax(rs)) if np.isfinite(rs).any() else float("nan")


def _within_chains(idata, names):
    """ArviZ's diagnostics summary with each chain judged on its own: the chain's two halves taken as two chains
    (which ArviZ's split R-hat splits again: four quarters compared), the worst R-hat over the chains and the
    ESS summed over them."""
    import arviz as az
    import xarray as xr

    post = idata.posterior[names]
    n = post.sizes["draw"]
    half = n // 2
    per = []
    for c in range(post.sizes["chain"]):
        x = post.isel(chain=c, drop=True)
        first = x.isel(draw=slice(0, half))
        second = x.isel(draw=slice(n - half, n)).assign_coords(draw=first["draw"])
        halves = xr.concat([first, second], dim="chain").transpose("chain", "draw", ...)
        per.append(az.summary(halves, kind="diagnostics", round_to="none"))
    out = per[0].copy()
    out["r_hat"] = np.max([p["r_hat"].to_numpy() for p in per], axis=0)
    for col in ("ess_bulk", "ess_tail"):
        out[col] = np.sum([p[col].to_numpy() for p in per], axis=0)
    return out


def rank_normalized_rhat(draws) -> np.ndarray:
    """Rank-normalised split R-hat (Vehtari et al. 2021) of every scalar in ``draws`` ``(chain, draw, ...)`` at
    once: ``(...)``, the larger of the bulk and the folded (tail) R-hat, as :func:`arviz.rhat` computes it
    (``method="rank"``; NaN where it is undefined: fewer than 2 chains or 4 draws, a non-finite draw, a
    constant).

    Ours because ArviZ loops in Python over the scalars: 60 s for the 89,400 weights of a 784-100-100
    network at 20 draws, where this takes a fraction of a second (``tests/test_report.py`` holds the two
    equal)."""
    from scipy import special, stats

    a = np.asarray(draws, dtype=np.float64)
    chains, n = a.shape[:2]
    flat = a.reshape(chains, n, -1)
    bad = (~np.isfinite(flat)).any(axis=(0, 1)) | (n < 4) | (chains < 2)

    def split(x):
        half = n // 2
        return np.concatenate([x[:, :half], x[:, n - half:]], axis=0)  # (2 x chains, half, k)

    def z_scale(x):
        c, m, k = x.shape
        ranks = stats.rankdata(x.reshape(c * m, k), method="average", axis=0).reshape(c, m, k)
        return special.ndtri((ranks - 0.375) / (c * m + 0.25))

    def rhat(x):
        m = x.shape[1]
        with np.errstate(invalid="ignore", divide="ignore"):
            between = m * np.var(x.mean(axis=1), axis=0, ddof=1)
            within = np.mean(np.var(x, axis=1, ddof=1), axis=0)
            return np.sqrt((between / within + m - 1) / m)

    halves = split(np.where(bad, 0.0, flat))  # odd draw counts drop the middle draw
    bulk = rhat(z_scale(halves))
    tail = rhat(z_scale(np.abs(halves - np.median(halves, axis=(0, 1)))))
    out = np.where(bad, np.nan, np.fmax(bulk, tail))
    return out.reshape(a.shape[2:])


# ------------------------------------------------------------------------------------------------- plots
def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()  # subplot titles clear of the axes above them
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _scalars(idata, names, per_vector: int = 3):
    """A small InferenceData of scalar quantities: the scalar ``names`` and the first ``per_vector``
    entries of vector ones (``lam_sorted0[0]``, ...), with the divergences."""
    import arviz as az

    post = {}
    for v in names:
        a = np.asarray(idata.posterior[v].values)
        if a.ndim == 2:
            post[v] = a
        else:
            flat = a.reshape(a.shape[:2] + (-1,))
            for i in range(min(per_vector, flat.shape[-1])):
                post[f"{v}[{i}]"] = flat[..., i]
    stats = {}
    if "sample_stats" in idata.groups():
        for k in ("diverging", "energy"):
            if k in idata.sample_stats:
                stats[k] = np.asarray(idata.sample_stats[k].values)
    return az.from_dict(posterior=post, sample_stats=stats or None)


def _figures(idata, names, kind: str, losses=None, pruning=None) -> dict[str, bytes]:
    import arviz as az
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    figs = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "mcmc":
            small = _scalars(idata, [v for v in names if not v.startswith("test_")][:4])
            axes = az.plot_trace(small, compact=False)
            figs["trace"] = _png(np.ravel(axes)[0].figure)
            axes = az.plot_rank(small)
            figs["rank"] = _png(np.ravel(axes)[0].figure)
            if "energy" in idata.sample_stats:
                ax = az.plot_energy(idata)
                figs["energy"] = _png(np.ravel(ax)[0].figure)
            if len(small.posterior.data_vars) > 1:
                axes = az.plot_pair(small, divergences="diverging" in small.sample_stats)
                figs["pair"] = _png(np.ravel(np.atleast_1d(axes))[0].figure)
        lam = [v for v in names if v.startswith("lam_sorted")]
        if lam and kind != "none":
            fig, ax = plt.subplots(figsize=(5, 3.2))
            for v in lam:
                a = idata.posterior[v].values.reshape(-1, idata.posterior[v].shape[-1])
                j = np.arange(1, a.shape[1] + 1)
                ax.loglog(j, np.median(a, 0), "o-", ms=3, label=f"{v}: posterior median")
                ax.fill_between(j, np.quantile(a, 0.05, 0), np.quantile(a, 0.95, 0), alpha=0.25)
            ax.set(xlabel="rank j", ylabel="sorted lambda_(j)", title="ordered node variances (90% band)")
            ax.legend(fontsize=7)
            figs["lambdas"] = _png(fig)
        if losses is not None:
            fig, ax = plt.subplots(figsize=(5, 3))
            losses = np.asarray(losses)
            if losses.ndim == 2:  # minibatch methods: the log density estimate per epoch, one row per chain
                for row in losses:
                    ax.plot(np.arange(1, row.size + 1), row)
                ax.set(xlabel="epoch", ylabel="log posterior (minibatch estimate)", title="log posterior by epoch")
                figs["log_density"] = _png(fig)
            else:
                ax.plot(losses)
                ax.set(xlabel="step", ylabel="loss (negative ELBO)", yscale="symlog", title="SVI")
                figs["svi_loss"] = _png(fig)
        if pruning:
            metric = "accuracy" if "accuracy" in pruning else "rmse"
            fig, ax = plt.subplots(figsize=(5, 3))
            ax.plot(np.asarray(pruning["fraction"]) * 100, pruning[metric], "o-")
            ax.set(xlabel="% hidden nodes removed (smallest lambda per draw)", ylabel=f"test {metric}")
            figs["pruning"] = _png(fig)
    return figs


# ------------------------------------------------------------------------------------------------ report
def write_report(idata, out_dir, *, var_names=None, extra: dict | None = None, title: str = "BNN fit",
                 losses=None, unidentified=None) -> dict:
    """Write ``report.html``, ``report_<plot>.png`` and ``summary.json`` into ``out_dir``; return the summary.

    ``var_names``: the identifiable quantities (default :func:`identifiable_names`); ``unidentified``: variables
    whose R-hat is reported, not targeted (:func:`diagnostics`); ``extra`` (test
    scores, ``seconds``, ...) is merged into the summary; ``seconds`` is the fitting time and
    ``ess_per_second = ess_bulk_min / seconds``; ``losses``: an SVI loss curve to plot.
    """
    out_dir = Path(out_dir)
    kind = draws_kind(idata)
    extra = dict(extra or {})
    pruning = extra.get("pruning")
    names = []
    if kind == "mcmc":
        diag = diagnostics(idata, var_names, extra.get("method"), unidentified=unidentified)
        names = list(diag["per_quantity"])
        summary = {"r_hat_max": diag["r_hat_max"], "ess_bulk_min": diag["ess_bulk_min"],
                   "divergences": diag["divergences"]}
    else:
        diag = {}
        if kind != "none":
            _add_derived(idata)
            names = [v for v in (var_names or identifiable_names(idata)) if v in idata.posterior]
        summary = {"r_hat_max": None, "ess_bulk_min": None, "divergences": None}
        summary["note"] = ("variational fit: independent draws from the fitted guide, so R-hat, ESS and "
                           "divergences do not apply" if kind == "independent" else
                           "one draw (a point estimate such as MAP) or no posterior draws (an exact posterior): no sampling "
                           "diagnostics")
    summary["draws"] = kind
    chains = int(idata.posterior.sizes.get("chain", 1)) if kind != "none" else 0
    summary["diagnostic_rule"] = diagnostic_rule(kind, extra.get("method"), chains,
                                                 selected_chain="chain_selection" in extra)
    if kind == "mcmc":
        summary["r_hat_threshold"] = R_HAT_THRESHOLD
        summary["r_hat_ok"] = bool(diag["r_hat_max"] < R_HAT_THRESHOLD)
    for key in ("accuracy", "nll"):
        if key in extra:
            summary[key] = extra.pop(key)
    summary["seconds"] = extra.pop("seconds", None)
    seconds = summary["seconds"]
    summary["ess_per_second"] = (diag["ess_bulk_min"] / seconds) if kind == "mcmc" and seconds else None
    summary.update({k: v for k, v in diag.items() if k not in summary})
    summary.update(extra)
    figs = _figures(idata, names, kind, losses=losses, pruning=pruning)
    parts = [f"<h1>{html.escape(title)}</h1>", "<h2>Summary</h2><table border=1 cellpadding=3>"]
    for k, v in summary.items():
        if not isinstance(v, (dict, list)):
            cell = _red(html.escape(str(v))) if k == "r_hat_max" and _above(v) else html.escape(str(v))
            parts.append(f"<tr><td>{html.escape(str(k))}</td><td>{cell}</td></tr>")
    parts.append("</table>")
    if diag:
        parts.append("<h2>Per quantity</h2><table border=1 cellpadding=3><tr><th>quantity</th>"
                     "<th>R-hat max</th><th>ESS bulk min</th><th>ESS tail min</th></tr>")
        for name, d in diag["per_quantity"].items():
            r_hat = f"{d['r_hat_max']:.4f}"
            parts.append(f"<tr><td>{html.escape(name)}</td><td>{_red(r_hat) if _above(d['r_hat_max']) else r_hat}</td>"
                         f"<td>{d['ess_bulk_min']:.1f}</td><td>{d['ess_tail_min']:.1f}</td></tr>")
        parts.append("</table>")
        if "raw_weights_r_hat_max" in diag:
            parts.append("<p>Raw weights are not identified (hidden-unit permutations and signs): their R-hat max "
                         f"is {diag['raw_weights_r_hat_max']:.3f}, reported, not targeted.</p>")
        if "unidentified_r_hat_max" in diag:
            parts.append(f"<p>{html.escape(', '.join(diag['unidentified']))}: the likelihood depends on these only "
                         "through the quantities above, so they are not identified; their R-hat max is "
                         f"{diag['unidentified_r_hat_max']:.3f}, reported, not targeted.</p>")
    if pruning:
        parts.append("<h2>Pruning</h2><table border=1 cellpadding=3><tr>"
                     + "".join(f"<th>{html.escape(k)}</th>" for k in pruning) + "</tr>")
        for row in zip(*pruning.values()):
            parts.append("<tr>" + "".join(f"<td>{v:.4g}</td>" for v in row) + "</tr>")
        parts.append("</table>")
    for name, data in figs.items():
        with atomic_path(out_dir / f"report_{name}.png", suffix=".png") as tmp:
            tmp.write_bytes(data)
        b64 = base64.b64encode(data).decode()
        parts.append(f"<h2>{name}</h2><img alt='{name}' src='data:image/png;base64,{b64}'/>")
    page = "<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) + \
        "</title></head><body>" + "\n".join(parts) + "</body></html>\n"
    atomic_write_text(out_dir / "report.html", page)
    atomic_write_json(out_dir / "summary.json", summary)
    return summary


def _above(r_hat) -> bool:
    """An R-hat that fails the rule (NaN fails too: too few draws to tell)."""
    return r_hat is not None and not (float(r_hat) < R_HAT_THRESHOLD)


def _red(text: str) -> str:
    return f"<span style='color:#c00;font-weight:bold'>{text}</span>"


def report_run(run_dir) -> dict:
    """:func:`write_report` for the run folder ``run_dir`` of any kind (:func:`bayes_mogp.load`): its
    posterior's ``to_inference_data()`` and ``diagnostic_vars``, its fitting time, and the scores of
    ``evaluate`` (or ``score``) on the test part the posterior carries (``test_data``), if any."""
    from .runs import load

    post = load(run_dir)
    idata = post.to_inference_data()
    extra = {"kind": post.kind, "task": post.task, "seconds": post.seconds}
    if post.method is not None:
        extra["method"] = post.method
    selection = (getattr(post, "sampler_record", None) or {}).get("chain_selection")
    if selection is not None:
        extra["chain_selection"] = selection
    if post.test_data is not None:
        extra.update({("n_test" if k == "n" else k): v for k, v in post.evaluate(*post.test_data).items()})
    title = f"{post.kind.upper()} fit" + (f" ({post.method})" if post.method else "")
    if post.prior_name is not None:
        extra["prior"] = post.prior_name
        title += f": {post.prior_name} prior"
    return write_report(idata, run_dir, var_names=list(post.diagnostic_vars) or None,
                        extra=extra, title=title, losses=post.losses,
                        unidentified=list(getattr(post, "unidentified_vars", ())) or None)
