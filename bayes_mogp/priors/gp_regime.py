r"""Priors whose limit is a Gaussian process: :math:`\rho = 0`, drift :math:`a > 0`.

* ``iid`` (He initialisation): :math:`\lambda = c/p` deterministic, :math:`\Lambda = c`.
* ``inverse_gamma`` (model (a), Ober and Aitchison 2021): :math:`\lambda \sim \mathrm{IG}(\alpha, \beta/p)`
  (shape :math:`\alpha > 1`, scale :math:`\beta/p`), :math:`\Lambda = \beta/(\alpha-1)`.  Then
  :math:`p\,P(\lambda > x) \sim p(\beta/(p x))^\alpha/\Gamma(\alpha+1) \to 0`, so :math:`\rho = 0`; for
  :math:`\alpha \le 1` the sum does not converge under this scaling, hence the check.  Note: at finite
  width the weight :math:`W = \sqrt\lambda V` is Student-t with :math:`2\alpha` degrees of freedom.
* ``gamma_gp`` (group lasso, Scardapane et al. 2017): :math:`\lambda \sim \mathrm{Gamma}(s, \text{rate } s p/c)`,
  mean :math:`c/p`, variance :math:`c^2/(s p^2)`, so :math:`\sum_j\lambda_j \to c`.

Table-1 defaults: ``c = 2``; ``inverse_gamma(shape=2, scale=2)``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpyro.distributions as dist

from ..validation import check_in_interval, check_positive, hyperparameter
from ._base import InfiniteWidthLimit, NodeVariancePrior, ZeroLevyMeasure
from .distributions import LogSpaceGamma

__all__ = ["IIDPrior", "InverseGammaPrior", "GammaGPPrior"]


class IIDPrior(NodeVariancePrior):
    r""":math:`\lambda = c/p` for every node: iid Gaussian weights with variance :math:`c\sigma_v^2/p`."""

    name = "iid"
    _defaults = {"c": 2.0}

    def _check(self, hyper):
        return {"c": hyperparameter("c", hyper["c"], check_positive)}

    def _distribution(self):
        return dist.Delta(jnp.asarray(self.hyper["c"] / self.width, dtype=jnp.result_type(float)))

    @property
    def is_discrete(self) -> bool:
        return False

    def sample_site(self, name: str = "lam", *, site_names=None):
        """:math:`\\lambda = c/p` for every node, recorded as the deterministic site ``name``: no latent site."""
        import numpyro

        del site_names
        return numpyro.deterministic(name, jnp.full((self.width,), self.hyper["c"] / self.width))

    def log_sample(self, key, sample_shape=()):
        del key
        return jnp.full(tuple(sample_shape), jnp.log(self.hyper["c"] / self.width), dtype=jnp.result_type(float))

    def _limit(self):
        return InfiniteWidthLimit(self.hyper["c"], ZeroLevyMeasure())


class InverseGammaPrior(NodeVariancePrior):
    r""":math:`\lambda \sim \mathrm{IG}(\text{shape}, \text{scale}/p)`; limit :math:`\Lambda = \text{scale}/(\text{shape}-1)`.

    ``distribution`` is NumPyro's ``InverseGamma(concentration=shape, rate=scale/p)`` (its ``rate`` is
    the inverse-gamma *scale*).
    """

    name = "inverse_gamma"
    _defaults = {"shape": 2.0, "scale": 2.0}

    def _check(self, hyper):
        shape = hyperparameter("shape", hyper["shape"], lambda n, v: check_in_interval(
            n, v, 1.0, float("inf"), low_open=True, high_open=True))
        return {"shape": shape, "scale": hyperparameter("scale", hyper["scale"], check_positive)}

    def _distribution(self):
        return dist.InverseGamma(self.hyper["shape"], self.hyper["scale"] / self.width)

    def log_sample(self, key, sample_shape=()):
        # 1/Gamma(shape, rate=scale/p) in log space
        g = LogSpaceGamma(self.hyper["shape"], self.hyper["scale"] / self.width)
        return -g.log_sample(key, tuple(sample_shape))

    def _limit(self):
        return InfiniteWidthLimit(self.hyper["scale"] / (self.hyper["shape"] - 1.0), ZeroLevyMeasure())


class GammaGPPrior(NodeVariancePrior):
    r""":math:`\lambda \sim \mathrm{Gamma}(s, \text{rate } s p / c)`: group lasso, GP limit with :math:`\Lambda = c`."""

    name = "gamma_gp"
    _defaults = {"shape": 1.0, "c": 2.0}

    def _check(self, hyper):
        return {"shape": hyperparameter("shape", hyper["shape"], check_positive),
                "c": hyperparameter("c", hyper["c"], check_positive)}

    def _distribution(self):
        s, c = self.hyper["shape"], self.hyper["c"]
        return LogSpaceGamma(s, s * self.width / c)

    def log_sample(self, key, sample_shape=()):
        return self._distribution().log_sample(key, tuple(sample_shape))

    def _limit(self):
        return InfiniteWidthLimit(self.hyper["c"], ZeroLevyMeasure())
