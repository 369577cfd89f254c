r"""Depth and width together: the log-Gaussian law of deep ReLU networks.

"The notes" below are the notes this module implements, after Hanin & Nica (2020), *Products of many
large random matrices and gradients in deep neural networks* (Comm. Math. Phys.).

Network (all weights iid :math:`N(0, 1)`, hidden widths :math:`n_0, \dots, n_d`)::

    z^0   = n_in^{-1/2} W^0 x                              W^0: (n_0, n_in)
    z^l   = (2 / n_{l-1})^{1/2} W^l relu(z^{l-1}),  l=1..d  W^l: (n_l, n_{l-1})
    z_out = n_d^{-1/2} W_out z^d                           W_out: (n_out, n_d)

and the ResNet variant (equal widths n) ``z^l = alpha z^{l-1} + lam (2/n)^{1/2} W^l relu(z^{l-1})`` with
:math:`\alpha^2 + \lambda^2 = 1`.

**Exact representation** (the notes, eq. 4-5).  Because :math:`W v \overset{d}{=} |v|\, g` for a Gaussian
matrix and ReLU is positively homogeneous, for *any* widths and depth

.. math::
    z_{out} \overset{d}{=} \frac{|x|}{\sqrt{n_{in}}}\, e^{G/2}\, g,\qquad
    G = \ln\frac{|z^d|^2/n_d}{|x|^2/n_{in}}
      = \sum_{l=0}^{d-1} \ln\Big(\frac{2}{n_l}\,\chi^2_{B_l}\Big) + \ln\frac{\chi^2_{n_d}}{n_d},

with :math:`g \sim N(0, I_{n_{out}})`, :math:`B_l \sim \mathrm{Binomial}(n_l, 1/2)` and all terms
independent.  :func:`sample_g_exact` draws G from this product in O(d) draws per sample; it is exact in law
for the MLP at every n and d, equal or unequal widths.  With probability
:math:`1 - \prod_{l<d}(1 - 2^{-n_l})` some :math:`B_l = 0`: every ReLU of a layer is off, the output is
exactly 0 and :math:`G = -\infty`; both samplers return ``-inf`` there and the statistics condition on
:math:`G > -\infty` (negligible for n >= 30: :math:`2^{-30} \approx 10^{-9}`).

**Convention for unequal widths.**  The product gives (first order in :math:`1/n_l`)

.. math::  \beta = 5 \sum_{l=0}^{d-1} \frac{1}{n_l} + \frac{2}{n_d},

layer :math:`l < d` contributing :math:`5/n_l` (a ReLU layer of width :math:`n_l`) and the *last* hidden
layer :math:`2/n_d` (a chi-square).  The notes write :math:`2/n_0 + 5\sum_{l=1}^d 1/n_l`, the same for equal
widths but with the layers in the other order; simulation sides with the derivation
(``tests/test_depth_width.py::test_unequal_widths_beta_convention``).  This package uses the derivation.

**Log-Gaussian limit.**  :math:`G \approx N(-\beta/2, \beta)` with errors :math:`O(d/n^2)`; for equal widths
:math:`\beta = 2/n + 5d/n`.  The second-order terms, from the Taylor expansion of :math:`\ln(1+Y)` with the
central moments of :math:`2 g^2 1\{g>0\}` (:math:`\mu_2 = 5, \mu_3 = 44, \mu_4 = 633`) and of :math:`g^2`
(2, 8, 60), are

.. math::
    E[G] = -\frac{\beta}{2} - \sum_{l<d}\frac{49}{12 n_l^2} - \frac{1}{3 n_d^2} + O(d/n^3),\qquad
    \mathrm{Var}[G] = \beta + \sum_{l<d}\frac{37}{2 n_l^2} + \frac{2}{n_d^2} + O(d/n^3)

(:func:`second_order_moments`); :func:`exact_moments` gives the exact finite-width moments from
digamma/trigamma sums over the binomial.  The infinite-width (GP) prediction is :math:`G = 0`.

**ResNets.**  The notes give :math:`\beta = 2/n + (5\lambda^4 + 4\alpha^2\lambda^2)\, d/n`
(:func:`beta_resnet`).  There is no exact product form for a ResNet (the direction of :math:`z^l` is no
longer uniform), so ResNets are sampled by network simulation only.  Measured here: the *standard* ReLU
ResNet above does **not** follow this beta -- its ReLUs are correlated from layer to layer and Var G is
larger (n = 50, d = 25, alpha = 0.5: Var G = 3.6 against beta = 1.82), the interlayer correlations of
Li, Nica & Roy (2021).  Their *balanced* ResNet removes those correlations; we implement it
(``resnet="balanced"``) by drawing an independent random sign :math:`\epsilon_i = \pm 1` per neuron and
layer, ``relu(eps * z)`` (our construction after their description -- activation exactly 1/2 in mean,
no interlayer correlation; we have not checked it against their paper's definition in detail).  What we
claim is measured: this network matches the beta formula within Monte Carlo error plus 5 d/n^2 (mean) and
20 d/n^2 (variance) for alpha = 0.3, 0.6, 0.9 at n = 50, d = 10 (``tests/test_depth_width.py``).

**Gradients.**  For ReLU networks and :math:`|x| = 1`, each column :math:`\partial z_{out}/\partial x_i`
of the input-output Jacobian has the law of :math:`z_{out}` (the notes, section 1.2.3);
``simulate_network(..., jacobian_column=i)`` samples it by forward-mode differentiation of the simulated
network (the tangent recursion with the ReLU derivative masks, exact for this piecewise-linear map).

Shapes: samplers return float64 NumPy arrays of shape ``(num_samples,)``.  Network simulation draws
:math:`\sum_l n_l n_{l-1}` normals per sample (d n^2), batched over a chunk of networks (batched matmul)
and looped over chunks so that memory stays at ``chunk_size * max(n_l n_{l-1})`` numbers.

Modules, one job each: :mod:`.theory` (beta and the moments), :mod:`.streams` (the random streams),
:mod:`.exact` (the exact sampler), :mod:`.simulate` (network simulation), :mod:`.cost` (the cost model),
:mod:`.summary` (summaries and the figure).
"""

from __future__ import annotations

from .theory import (
    RESNET_VARIANTS,
    as_widths,
    beta_mlp,
    beta_resnet,
    exact_moments,
    log_gaussian_moments,
    output_log_norm_density,
    output_log_norm_moments,
    second_order_moments,
)
from .exact import sample_g_exact, sample_output_log_norm_exact, exact_work_units, EXACT_CHUNK, EXACT_BLOCK
from .simulate import NetworkSamples, simulate_network
from .cost import estimate_cost, EXACT_LAYERS_PER_SECOND, NETWORK_WEIGHTS_PER_SECOND
from .summary import GSummary, summarize_g, plot_log_norm_densities

__all__ = [
    "as_widths",
    "beta_mlp",
    "beta_resnet",
    "log_gaussian_moments",
    "second_order_moments",
    "exact_moments",
    "output_log_norm_moments",
    "output_log_norm_density",
    "sample_g_exact",
    "sample_output_log_norm_exact",
    "NetworkSamples",
    "simulate_network",
    "GSummary",
    "summarize_g",
    "plot_log_norm_densities",
    "estimate_cost",
    "exact_work_units",
    "EXACT_LAYERS_PER_SECOND",
    "NETWORK_WEIGHTS_PER_SECOND",
    "EXACT_CHUNK",
    "EXACT_BLOCK",
    "RESNET_VARIANTS",
]
