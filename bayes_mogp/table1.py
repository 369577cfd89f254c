r"""The measurements behind Table 1 of Lee et al. (2023) and the rules that turn them into cells.

Setting (the paper's section 3): one hidden ReLU layer of width :math:`p`, two outputs, no bias,
:math:`\sigma_v = 1`, one input with :math:`\|x\|^2 = d_{in}`, so the features
:math:`h_j = d_{in}^{-1/2}\sum_i V_{ij}x_i` are iid :math:`N(0,1)` and are drawn as such (equal in law);
:math:`Z_k = \sum_j \sqrt{\lambda_j} V_{jk}\,\mathrm{relu}(h_j)`, :math:`W_{jk} = \sqrt{\lambda_j}V_{jk}`.

Rows: the paper's (``iid``, ``a``-``d``) and ``gbfry``, which the paper's table does not have; its expected
cells come from the theory (:data:`TABLE1_THEORY`).  Measured per model, from ``num_networks`` sampled networks at each width, and the rules:

* ``limit``: interquartile range of :math:`\sum_j\lambda_j` across widths; **GP** iff at the largest
  width it is below 0.01 or below half its value at the smallest width (it shrinks to a constant
  limit), else **MoGP**.
* ``dependent_outputs``: Spearman correlation of :math:`|Z_1|, |Z_2|` at the largest width (their
  linear correlation is 0 by symmetry); **dependent** iff :math:`r_s\sqrt{N-1} > 3.09` (one-sided test
  of independence at level 0.001); a 95% interval is reported.
* ``tail_Z`` / ``tail_W``: Hill estimate of the tail index of :math:`|Z_1|` (top 1%) and of
  :math:`|W_{j1}|` (pooled, top 0.1%); **power-law** iff below 2 (infinite variance), else
  **exponential** (Gaussian and exponential tails give Hill estimates that grow with the threshold,
  here well above 2).  Excess kurtosis of :math:`Z_1` is reported.
* ``active_nodes_mean``: mean number of nodes with :math:`\lambda > 0` (counted in log space);
  finite (the number) iff it grows by less than 1.5x from the smallest to the largest width, else
  ``null`` (infinitely many).
* ``max_W_to_zero``: median of :math:`\max_j|W_{j1}|` (the mean is infinite for (d)); **yes** iff it
  falls by more than half from the smallest to the largest width.
* ``ordered_W2_decay``: medians of the 20 largest :math:`W_{j1}^2` at the largest width, fitted
  against :math:`j` (exponential) and :math:`\log j` (power law); the better :math:`R^2` decides;
  only where the number of active nodes is infinite and :math:`\max|W|\not\to 0`, else ``"-"``.
* ``compressible``: relative pruning error with :math:`\kappa = 0.1`,
  :math:`E[\sum_{j\ \mathrm{pruned}}\lambda_j\phi_j^2/\sum_j\lambda_j\phi_j^2]` (the conditional share
  of :math:`\mathrm{Var}(Z)` removed); **yes** iff it is below 0.05 at the largest width and at most
  half its value at the smallest width (or 0 at both).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from .networks import hidden_layer
from .priors import get_prior
from .pruning import prune_mask
from .validation import check_choice, check_in_interval, check_int
from .errors import InputError

__all__ = ["MODELS", "TABLE1_PAPER", "TABLE1_THEORY", "EXPECTED_CELLS", "SPEC_SCHEMA", "measure_model", "decide", "run_table1", "format_table",
           "estimate_cost", "NODES_PER_SECOND"]

MODELS = ("iid", "a", "b", "c", "d", "gbfry")

#: The paper's qualitative cells, used only by the tests and the notebook to compare, never to decide.
TABLE1_PAPER = {
    "iid": dict(limit="GP", dependent_outputs=False, tail_Z="exponential", max_W_to_zero=True, compressible=False),
    "a": dict(limit="GP", dependent_outputs=False, tail_Z="exponential", max_W_to_zero=True, compressible=False),
    "b": dict(limit="MoGP", dependent_outputs=True, tail_Z="exponential", max_W_to_zero=False, compressible=True),
    "c": dict(limit="MoGP", dependent_outputs=True, tail_Z="exponential", max_W_to_zero=False, compressible=True),
    "d": dict(limit="MoGP", dependent_outputs=True, tail_Z="power-law", max_W_to_zero=False, compressible=True),
}

#: Cells of rows the paper's table does not have, from the theory (never used to decide).  GBFRY
#: (alpha = .5, tau = 2): the limit has infinite activity and no drift (MoGP, outputs dependent, max|W| stays
#: O(1), ordered jumps decay as j^(-1/alpha), so compressible); E Lambda = mu is finite, so Var Z is finite and
#: |Z| has a power tail of index 2 tau = 4, which the tail rule (infinite variance or not) files as "exponential".
TABLE1_THEORY = {
    "gbfry": dict(limit="MoGP", dependent_outputs=True, tail_Z="exponential", max_W_to_zero=False, compressible=True),
}
#: what each row is checked against: the paper's cells, else the theory's
EXPECTED_CELLS = {**TABLE1_PAPER, **TABLE1_THEORY}

NUM_TOP = 20

#: the keys of a Table-1 spec (``models/table1_<model>.toml``, shipped with the package), checked on reading
SPEC_SCHEMA = {"name": str, "row": str, "prior": str, "activation": str, "d_out": int, "hyper": {"*": float}}


def _hill(x, frac):
    x = np.sort(np.abs(np.asarray(x)).ravel())[::-1]
    x = x[x > 0]  # zero weights (Bernoulli: inactive nodes) carry no tail
    k = max(int(frac * x.size), 10)
    if x.size <= k:
        return float("nan")
    top, thr = x[:k], x[k]
    return float(1.0 / np.mean(np.log(top / thr)))


def _simulate(key, prior, num_networks, kappa, chunk):
    p = prior.width

    def one(k):
        k1, k2, k3 = jax.random.split(k, 3)
        loglam = prior.log_sample(k1, (p,))
        lam = jnp.exp(loglam)
        h = jax.random.normal(k2, (p,))  # the hidden pre-activations: N(0, 1) for an input with |x|^2 = d_in
        V = jax.random.normal(k3, (p, 2))
        z = hidden_layer(h, lam, V, 0.0, phi=jax.nn.relu)  # eq. (1), two outputs
        phi = jax.nn.relu(h)
        contrib = lam * phi**2
        pruned = jnp.where(prune_mask(lam, 1.0 - kappa), 0.0, contrib).sum()
        total = contrib.sum()
        rel = jnp.where(total > 0, pruned / jnp.where(total > 0, total, 1.0), 0.0)
        w = jnp.sqrt(lam) * V[:, 0]
        top_w2 = jax.lax.top_k(w**2, min(NUM_TOP, p))[0]
        return dict(z=z, sum_lam=lam.sum(), active=(loglam > -jnp.inf).sum(), max_w=jnp.max(jnp.abs(w)),
                    prune_rel=rel, top_w2=top_w2, w_sample=w[:50])

    # Not jitted: run op by op, each primitive is compiled once per shape and shared by the five models (the
    # normal draws, sorts and sums are the same for every prior), which costs less than compiling the whole
    # function per model and width (measured: 40% less CPU time for the quick table, the same results).
    f = jax.vmap(one)
    keys = jax.random.split(key, num_networks)
    # Equal chunks, the last one padded with repeated keys and its extra rows dropped: one set of shapes per
    # width whatever num_networks is (network i depends on keys[i] only, so chunking never changes the result).
    n_chunks = -(-num_networks // chunk)
    chunk = -(-num_networks // n_chunks)
    pad = n_chunks * chunk - num_networks
    if pad:
        keys = jnp.concatenate([keys, keys[:pad]])
    parts = [f(keys[i : i + chunk]) for i in range(0, n_chunks * chunk, chunk)]
    return {k: np.concatenate([np.asarray(pt[k]) for pt in parts])[:num_networks] for k in parts[0]}


def measure_model(key, model: str, widths, num_networks: int, *, kappa: float = 0.1, chunk: int | None = None) -> dict:
    """All measured figures for one Table-1 model (see the module docstring)."""
    from .specs import builtin_spec

    check_choice("model", model, MODELS)
    spec = builtin_spec(f"table1_{model}", schema=SPEC_SCHEMA)
    out = {"widths": list(widths), "per_width": []}
    sims = []
    for i, p in enumerate(widths):
        prior = get_prior(spec["prior"], int(p), **spec.get("hyper", {}))
        c = chunk or max(1, min(num_networks, 2_000_000 // (int(p) * 8)))
        sim = _simulate(jax.random.fold_in(key, i), prior, num_networks, kappa, c)
        sims.append(sim)
        out["per_width"].append(
            dict(width=int(p), active_nodes_mean=float(sim["active"].mean()),
                 median_max_abs_W=float(np.median(sim["max_w"])), pruning_error=float(sim["prune_rel"].mean()),
                 sum_lam_iqr=float(np.subtract(*np.quantile(sim["sum_lam"], [0.75, 0.25]))))
        )
    big = sims[-1]
    z1, z2 = big["z"][:, 0], big["z"][:, 1]
    from scipy import stats

    rs = float(stats.spearmanr(np.abs(z1), np.abs(z2)).statistic)
    n = z1.size
    half = 1.96 / math.sqrt(n - 3)
    out["spearman_abs_Z"] = rs
    out["spearman_abs_Z_ci95"] = [math.tanh(math.atanh(rs) - half), math.tanh(math.atanh(rs) + half)]
    out["independence_z"] = rs * math.sqrt(n - 1)
    out["kurtosis_Z"] = float(stats.kurtosis(z1))
    out["hill_Z"] = _hill(big["z"], 0.01)
    out["hill_W"] = _hill(big["w_sample"], 0.001)
    med = np.median(big["top_w2"], axis=0)
    med = med[med > 0]
    j = np.arange(1, med.size + 1)
    if med.size >= 5:
        y = np.log(med)
        r2 = lambda xx: float(np.corrcoef(xx, y)[0, 1] ** 2)  # noqa: E731
        out["ordered_W2_r2_exp"], out["ordered_W2_r2_power"] = r2(j), r2(np.log(j))
        out["ordered_W2_power_slope"] = float(np.polyfit(np.log(j), y, 1)[0])
        out["ordered_W2_exp_rate"] = float(-np.polyfit(j, y, 1)[0])
    return out


def decide(m: dict) -> dict:
    """The qualitative cells from the measurements, by the rules of the module docstring."""
    first, last = m["per_width"][0], m["per_width"][-1]
    active_finite = last["active_nodes_mean"] < 1.5 * first["active_nodes_mean"]
    max_w0 = last["median_max_abs_W"] < 0.5 * first["median_max_abs_W"]
    e0, e1 = first["pruning_error"], last["pruning_error"]
    cells = dict(
        limit="GP" if (last["sum_lam_iqr"] < 0.5 * first["sum_lam_iqr"] or last["sum_lam_iqr"] < 0.01) else "MoGP",
        dependent_outputs=bool(m["independence_z"] > 3.09),
        tail_Z="power-law" if m["hill_Z"] < 2 else "exponential",
        tail_W="power-law" if m["hill_W"] < 2 else "exponential",  # NaN -> exponential
        max_W_to_zero=bool(max_w0),
        compressible=bool(e1 < 0.05 and (e1 <= 0.5 * e0 or e0 == 0)),
        active_nodes_mean=last["active_nodes_mean"] if active_finite else None,
    )
    decay = "-"
    if not active_finite and not max_w0 and "ordered_W2_r2_exp" in m:
        if m["ordered_W2_r2_exp"] >= m["ordered_W2_r2_power"]:
            decay = f"O(e^-cj), c = {m['ordered_W2_exp_rate']:.2f}"
        else:
            decay = f"O(j^{m['ordered_W2_power_slope']:.2f})"
    cells["ordered_W2_decay"] = decay
    return cells


#: nodes per second behind :func:`estimate_cost` (a variance, a feature and two output weights per node), for
#: the gamma-based priors, the slowest: measured as the marginal cost of more networks, float64, on 2 CPU cores,
#: 4.4e5 for beta on 2026-12-06 (500 x 3000 nodes in 3.43 s; iid: 3e7).  It was 1e6 from an earlier measurement
#: of 1.5e6 (beta) to 1.9e6, 3.4x above today's, more than this machine's drift of about a third (the cause not
#: traced); the slow pass holds it within 5x of a timed run
NODES_PER_SECOND = 5e5
#: seconds of compilation per model and width behind :func:`estimate_cost`
COMPILE_SECONDS = 3.0


def estimate_cost(widths, num_networks: int, *, models=MODELS) -> dict:
    """Expected seconds and peak bytes of :func:`run_table1`, before any work: ``{"seconds", "bytes", "nodes"}``.

    ``len(models) * num_networks * sum(widths)`` nodes at :data:`NODES_PER_SECOND`, plus
    :data:`COMPILE_SECONDS` per model and width; memory: one chunk of networks (at least 250 000 nodes, at
    least one network of the largest width) in 16 float64 arrays, and the ~80 figures kept per network.
    """
    widths = [check_int("widths", w, minimum=2) for w in widths]
    num_networks = check_int("num_networks", num_networks, minimum=1)
    nodes = float(len(models)) * num_networks * sum(widths)
    seconds = nodes / NODES_PER_SECOND + COMPILE_SECONDS * len(models) * len(widths)
    bytes_ = 16 * 8.0 * max(250_000, max(widths)) + 80 * 8.0 * num_networks * len(widths)
    return {"seconds": seconds, "bytes": bytes_, "nodes": nodes}


def run_table1(key, widths, num_networks: int, *, kappa: float = 0.1, models=MODELS, progress=None) -> dict:
    """``{"rows": [...]}``: for each model its cells, whether they agree with the paper, and the figures."""
    widths = [check_int("widths", w, minimum=2) for w in widths]
    if len(widths) < 2 or sorted(widths) != widths:
        raise InputError(f"widths must be at least two increasing integers, got {widths}")
    num_networks = check_int("num_networks", num_networks, minimum=100)
    kappa = check_in_interval("kappa", kappa, 0.0, 1.0, low_open=True)
    rows = []
    it = progress(models) if progress else models
    for i, model in enumerate(it):
        m = measure_model(jax.random.fold_in(key, i), model, widths, num_networks, kappa=kappa)
        cells = decide(m)
        agrees = all(cells[k] == v for k, v in EXPECTED_CELLS[model].items())
        rows.append({"model": model, **cells, "agrees_with_paper": agrees, "measured": m})
    return {"rows": rows, "widths": widths, "num_networks": num_networks, "kappa": kappa}


def format_table(result: dict) -> str:
    """The table of :func:`run_table1` as text: the cells, then the measured figures behind them."""
    cols = ["model", "limit", "dependent_outputs", "tail_Z", "tail_W", "active_nodes_mean", "max_W_to_zero",
            "ordered_W2_decay", "compressible", "agrees_with_paper"]
    heads = ["model", "limit", "dep. outputs", "tail Z", "tail W", "active nodes", "max|W|->0", "ordered W^2",
             "compressible", "agrees"]
    rows = []
    for r in result["rows"]:
        vals = []
        for c in cols:
            v = r[c]
            vals.append("inf" if (c == "active_nodes_mean" and v is None) else
                        (f"{v:.2f}" if isinstance(v, float) else ("yes" if v is True else "no" if v is False else str(v))))
        rows.append(vals)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths))  # noqa: E731
    out = [line(heads), line(["-" * w for w in widths])] + [line(r) for r in rows]
    out.append("")
    out.append("measured (largest width): spearman|Z1|,|Z2|  Hill(Z)  Hill(W)  kurtosis(Z)  pruning error by width")
    for r in result["rows"]:
        m = r["measured"]
        errs = ", ".join(f"{w['pruning_error']:.2g}" for w in m["per_width"])
        out.append(f"  {r['model']:<4} {m['spearman_abs_Z']:+.3f}  {m['hill_Z']:.2f}  {m['hill_W']:.2f}  "
                   f"{m['kurtosis_Z']:.3g}  [{errs}]")
    seconds = f", {result['seconds']:.1f} s" if "seconds" in result else ""
    out.append(f"widths {result['widths']}, {result['num_networks']} networks each, kappa {result['kappa']}{seconds}")
    return "\n".join(out)
