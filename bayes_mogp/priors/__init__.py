r"""Per-node variance priors and their infinite-width limits (Lee et al. 2023, eq. 1-2; docs/math.md sections 1-2).

>>> from bayes_mogp.priors import get_prior
>>> prior = get_prior("horseshoe", 1000)          # or get_prior("d", 1000): Table 1's model (d)
>>> lam = prior.sample(key, (1000,))                # one layer's per-node variances
>>> prior.limit.regime, prior.limit.drift          # ('MoGP', 0.0)
>>> prior.limit.sample_jumps(key, 20)              # the 20 largest jumps of Lambda, decreasing

=====================  ==============================  ==================  ======  ============================
name (alias)           lambda per node (width p)        hyperparameters      a       rho(dx)
=====================  ==============================  ==================  ======  ============================
``iid``                c/p                              c=2                  c       0
``inverse_gamma`` (a)  IG(shape, scale/p)               shape=2, scale=2     s/(sh-1) 0
``gamma_gp``           Gamma(shape, rate shape p/c)     shape=1, c=2         c       0
``bernoulli`` (b)      size * Bernoulli(rate/p)         rate=2, size=1       0       rate delta_size
``beta`` (c)           Beta(c/p, 1/2)                   c=1                  0       c x^-1 (1-x)^-1/2 on (0,1)
``horseshoe`` (d)      (pi scale/p)^2 HalfCauchy^2      scale=1              0       scale x^-3/2
``gamma_mogp``         Gamma(c/p, rate)                 c=2, rate=1          0       c x^-1 e^-rate x
``generalized_gamma``  increment over time 1/p          c=2, sigma=.5, tau=1 0       c/G(1-s) x^-1-s e^-tau x
``gbfry``              c W P G (double power law)       alpha=.5, tau=2,     0       see :mod:`.gbfry` (c-scaled)
                                                        mu=1
=====================  ==============================  ==================  ======  ============================

A new family: subclass :class:`NodeVariancePrior` (``_distribution`` and ``_limit``) or build a
:class:`CustomPrior` from a law and a :class:`LevyMeasure` (:class:`NumericLevyMeasure` needs only
the density).
"""

from __future__ import annotations

from ..validation import check_choice
from ._base import InfiniteWidthLimit, LevyMeasure, NodeVariancePrior, ZeroLevyMeasure, monotone_inverse
from .bernoulli import BernoulliLevy, BernoulliPrior
from .beta import BetaLevy, BetaPrior
from .custom import CustomPrior, NumericLevyMeasure
from .distributions import BernoulliVariance, LogSpaceBeta, LogSpaceGamma, TemperedStable
from .gamma import GammaLevy, GammaMoGPPrior, GeneralizedGammaLevy, GeneralizedGammaPrior
from .gbfry import GBFRYLevy, GBFRYPrior, GBFRYVariance, LogGBFRYVariance
from .gp_regime import GammaGPPrior, IIDPrior, InverseGammaPrior
from .horseshoe import HorseshoeLevy, HorseshoePrior
from ..errors import InputTypeError

__all__ = [
    "PRIOR_NAMES",
    "TABLE1_ALIASES",
    "get_prior",
    "NodeVariancePrior",
    "InfiniteWidthLimit",
    "LevyMeasure",
    "ZeroLevyMeasure",
    "NumericLevyMeasure",
    "CustomPrior",
    "IIDPrior",
    "InverseGammaPrior",
    "GammaGPPrior",
    "BernoulliPrior",
    "BetaPrior",
    "HorseshoePrior",
    "GammaMoGPPrior",
    "GeneralizedGammaPrior",
    "GBFRYPrior",
    "BernoulliLevy",
    "BetaLevy",
    "HorseshoeLevy",
    "GammaLevy",
    "GeneralizedGammaLevy",
    "GBFRYLevy",
    "BernoulliVariance",
    "LogSpaceBeta",
    "LogSpaceGamma",
    "TemperedStable",
    "GBFRYVariance",
    "LogGBFRYVariance",
    "monotone_inverse",
]

_REGISTRY = {
    cls.name: cls
    for cls in (
        IIDPrior,
        InverseGammaPrior,
        BernoulliPrior,
        BetaPrior,
        HorseshoePrior,
        GammaGPPrior,
        GammaMoGPPrior,
        GeneralizedGammaPrior,
        GBFRYPrior,
    )
}

#: The family names accepted by :func:`get_prior`.
PRIOR_NAMES = tuple(_REGISTRY)

#: Table 1 of Lee et al. (2023): models (a)-(d) with their default hyperparameters.
TABLE1_ALIASES = {"a": "inverse_gamma", "b": "bernoulli", "c": "beta", "d": "horseshoe"}


def get_prior(name: str, width: int, **hyper) -> NodeVariancePrior:
    """The prior ``name`` (a family of :data:`PRIOR_NAMES` or a Table-1 alias ``"a"``-``"d"``) at ``width``.

    Hyperparameters not given take the defaults of the table above (Table 1's values).  Raises
    ``ValueError`` for an unknown name, ``width < 1`` or an out-of-range hyperparameter, and
    ``TypeError`` for an unknown hyperparameter, each naming the parameter.
    """
    if not isinstance(name, str):
        raise InputTypeError(f"prior name must be a string, got {type(name).__name__}")
    key = TABLE1_ALIASES.get(name, name)
    check_choice("prior name", key, list(PRIOR_NAMES) + list(TABLE1_ALIASES))
    return _REGISTRY[key](width, **hyper)
