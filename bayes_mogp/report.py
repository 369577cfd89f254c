r"""ArviZ InferenceData, diagnostics summary and the self-contained HTML report of a BNN fit.

* :func:`to_inference_data`: groups ``posterior`` (all sampled and deterministic sites, ``(chain, draw,
  ...)``), ``sample_stats`` (renamed to ArviZ's names: ``lp = -potential_energy``, ``energy``,
  ``diverging``, ``n_steps``, ``acceptance_rate``, ``step_size``), ``log_likelihood`` (per training
  point, for LOO/WAIC), ``posterior_predictive`` (replicated training labels ``y`` and the test
  probabilities of the true class ``test_prob``) and ``observed_data``.  Saved as netCDF (h5netcdf).
* :func:`diagnostics`: R-hat (rank-normalised split), ESS bulk/tail on the *identifiable* quantities
  (DESIGN section 7: test predictions, total log-likelihood, sorted per-node variances, global scales;
  raw weights are not identified under the permutation and sign symmetries of hidden units, so their
  R-hat is reported but not targeted), divergences, E-BFMI, LOO and WAIC.
* :func:`write_report`: trace, rank, energy and pair plots as PNG files and one HTML page with the PNGs
  embedded (base64), plus ``summary.json`` with the keys ``r_hat_max, ess_bulk_min, divergences,
  accuracy, nll, seconds, ess_per_second`` (``ess_per_second = ess_bulk_min / seconds``).
"""

from __future__ import annotations

import base64
import html
import io
import warnings
from pathlib import Path

import numpy as np

from .io import atomic_path, atomic_write_json, atomic_write_text

__all__ = ["to_inference_data", "save_inference_data", "identifiable_names", "diagnostics", "write_report"]

_STAT_NAMES = {"potential_energy": "lp", "energy": "energy", "diverging": "diverging", "num_steps": "n_steps",
               "accept_prob": "acceptance_rate", "adapt_state.step_size": "step_size"}


def to_inference_data(samples: dict, stats: dict, *, log_likelihood=None, posterior_predictive=None,
                      observed_data=None):
    """Build an ``arviz.InferenceData``; every array ``(chain, draw, ...)`` (observed data unbatched)."""
    import arviz as az

    sample_stats = {}
    for k, v in stats.items():
        name = _STAT_NAMES.get(k, k.replace(".", "_"))
        v = np.asarray(v)
        sample_stats[name] = -v if k == "potential_energy" else v
    return az.from_dict(
        posterior={k: np.asarray(v) for k, v in samples.items()},
        sample_stats=sample_stats,
        log_likelihood=log_likelihood,
        posterior_predictive=posterior_predictive,
        observed_data=observed_data,
    )


def save_inference_data(idata, path) -> Path:
    """netCDF (h5netcdf engine), written atomically."""
    with atomic_path(path, suffix=".nc") as tmp:
        idata.to_netcdf(str(tmp), engine="h5netcdf")
    return Path(path)


def identifiable_names(idata) -> list[str]:
    """Posterior/derived variables on which mixing is judged (module docstring)."""
    post = list(idata.posterior.data_vars)
    names = [v for v in post if v.startswith(("lam_sorted", "tau")) and not v.endswith(("_z", "_g", "_c"))]
    return names + [v for v in ("log_lik_total", "test_prob") if v in post]


def _add_derived(idata):
    """Add ``log_lik_total`` and ``test_prob`` to the posterior group (copies) so ArviZ summarises them."""
    post = idata.posterior
    if "log_likelihood" in idata.groups() and "log_lik_total" not in post:
        ll = idata.log_likelihood["y"]
        post["log_lik_total"] = ll.sum([d for d in ll.dims if d not in ("chain", "draw")])
    if "posterior_predictive" in idata.groups() and "test_prob" in idata.posterior_predictive and "test_prob" not in post:
        post["test_prob"] = idata.posterior_predictive["test_prob"]
    return idata


def diagnostics(idata) -> dict:
    """R-hat/ESS on identifiable quantities and on raw weights, divergences, BFMI, LOO, WAIC."""
    import arviz as az

    _add_derived(idata)
    names = identifiable_names(idata)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # round_to="none": ArviZ rounds to 2 decimals by default, and an R-hat of 1.006 must not read 1.01
        summ = az.summary(idata, var_names=names, kind="diagnostics", round_to="none")
        out["r_hat_max"] = float(summ["r_hat"].max())
        out["ess_bulk_min"] = float(summ["ess_bulk"].min())
        out["ess_tail_min"] = float(summ["ess_tail"].min())
        out["worst"] = str(summ["ess_bulk"].idxmin())
        per = {}
        for name in names:
            s = summ.loc[[i for i in summ.index if i == name or i.startswith(name + "[")]]
            per[name] = {"r_hat_max": float(s["r_hat"].max()), "ess_bulk_min": float(s["ess_bulk"].min()),
                         "ess_tail_min": float(s["ess_tail"].min())}
        out["per_quantity"] = per
        raw = [v for v in idata.posterior.data_vars if v.startswith(("V", "W"))]
        if raw:
            rs = az.rhat(idata, var_names=raw)
            out["raw_weights_r_hat_max"] = float(max(float(rs[v].max()) for v in raw))
        out["divergences"] = int(idata.sample_stats["diverging"].sum()) if "diverging" in idata.sample_stats else 0
        if "energy" in idata.sample_stats:
            out["bfmi_min"] = float(np.min(az.bfmi(idata)))
        if "log_likelihood" in idata.groups() and idata.posterior.sizes["draw"] > 1:
            loo = az.loo(idata)
            waic = az.waic(idata)
            out["loo"] = {"elpd": float(loo.elpd_loo), "se": float(loo.se), "p": float(loo.p_loo),
                          "pareto_k_max": float(np.max(loo.pareto_k))}
            out["waic"] = {"elpd": float(waic.elpd_waic), "se": float(waic.se), "p": float(waic.p_waic)}
    return out


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _figures(idata) -> dict[str, bytes]:
    import arviz as az
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    _add_derived(idata)
    figs = {}
    tau = [v for v in idata.posterior.data_vars if v.startswith("tau") and not v.endswith(("_z", "_g", "_c"))]
    main = tau + [v for v in ("log_lik_total",) if v in idata.posterior]
    coords = {}
    lam = [v for v in idata.posterior.data_vars if v.startswith("lam_sorted")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sel = main + lam[:1]
        if lam:
            coords = {f"{lam[0]}_dim_0": [0, 1, 2]}
        axes = az.plot_trace(idata, var_names=sel, coords=coords, compact=False)
        figs["trace"] = _png(np.ravel(axes)[0].figure)
        axes = az.plot_rank(idata, var_names=sel, coords=coords)
        figs["rank"] = _png(np.ravel(axes)[0].figure)
        if "energy" in idata.sample_stats:
            ax = az.plot_energy(idata)
            figs["energy"] = _png(np.ravel(ax)[0].figure)
        if len(sel) >= 1 and (len(sel) > 1 or lam):
            axes = az.plot_pair(idata, var_names=sel, coords=coords, divergences="diverging" in idata.sample_stats)
            figs["pair"] = _png(np.ravel(np.atleast_1d(axes))[0].figure)
        if lam:
            fig, ax = plt.subplots(figsize=(5, 3.2))
            v = idata.posterior[lam[0]].values.reshape(-1, idata.posterior[lam[0]].shape[-1])
            j = np.arange(1, v.shape[1] + 1)
            ax.loglog(j, np.median(v, 0), "o-", ms=3, label="posterior median")
            ax.fill_between(j, np.quantile(v, 0.05, 0), np.quantile(v, 0.95, 0), alpha=0.3, label="90%")
            ax.set(xlabel="rank j", ylabel="sorted lambda_(j)", title="ordered node variances")
            ax.legend()
            figs["lambdas"] = _png(fig)
    return figs


def write_report(idata, out_dir, *, extra: dict | None = None, title: str = "BNN fit") -> dict:
    """Write ``report.html``, ``report_<plot>.png`` and ``summary.json`` into ``out_dir``; return the summary.

    ``extra`` (e.g. ``{"accuracy", "nll", "seconds", ...}``) is merged into the summary; ``seconds`` is
    the sampling time and ``ess_per_second = ess_bulk_min / seconds``.
    """
    out_dir = Path(out_dir)
    diag = diagnostics(idata)
    summary = {"r_hat_max": diag["r_hat_max"], "ess_bulk_min": diag["ess_bulk_min"],
               "divergences": diag["divergences"]}
    extra = dict(extra or {})
    for key in ("accuracy", "nll", "seconds"):
        summary[key] = extra.pop(key, None)
    summary["ess_per_second"] = (diag["ess_bulk_min"] / summary["seconds"]) if summary["seconds"] else None
    summary.update({k: v for k, v in diag.items() if k not in summary})
    summary.update(extra)
    figs = _figures(idata)
    parts = [f"<h1>{html.escape(title)}</h1>", "<h2>Summary</h2><table border=1 cellpadding=3>"]
    for k, v in summary.items():
        if not isinstance(v, (dict, list)):
            parts.append(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>")
    parts.append("</table><h2>Per quantity</h2><table border=1 cellpadding=3><tr><th>quantity</th>"
                 "<th>R-hat max</th><th>ESS bulk min</th><th>ESS tail min</th></tr>")
    for name, d in diag["per_quantity"].items():
        parts.append(f"<tr><td>{html.escape(name)}</td><td>{d['r_hat_max']:.4f}</td>"
                     f"<td>{d['ess_bulk_min']:.1f}</td><td>{d['ess_tail_min']:.1f}</td></tr>")
    parts.append("</table><p>Raw weights are not identified (hidden-unit permutations and signs): "
                 f"their R-hat max is {diag.get('raw_weights_r_hat_max', float('nan')):.3f}, reported, not targeted.</p>")
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
