"""Import neural-tangents 0.6.5 on current JAX (>= 0.7), without TensorFlow.

Why this exists: neural-tangents 0.6.5 is the last release, and it reaches JAX
names that were removed from the public namespace after it was published:

======================================  ===========================================================
name used by neural-tangents            restored as
======================================  ===========================================================
``jax.core.{Jaxpr, JaxprEqn, Literal,   the same objects from ``jax.extend.core`` (their public home)
Var, Primitive}``
``jax.util`` (``safe_map``,             a module exposing ``jax._src.util``'s functions
``safe_zip``)
``jax.random.KeyArray``                 ``jax.Array`` (typed keys are ordinary arrays now)
``jax.interpreters.ad.zeros_like_p``    a fresh, never-bound ``Primitive("zeros_like")``: it is only
                                        a dictionary key of the structured-derivatives rules, so the
                                        ``STRUCTURED_DERIVATIVES`` empirical NTK does not work
======================================  ===========================================================

and ``neural_tangents/__init__.py`` imports ``neural_tangents.experimental``, which imports
``jax2tf`` and hence TensorFlow (1.9 GB).  The ``stax`` kernels, ``predict``, ``batch``,
``empirical_ntk_fn`` and ``monte_carlo_kernel_fn`` need none of it, so a placeholder module that
raises a clear ``ImportError`` on attribute access is installed in its place.

Each patch is applied only if the name is missing, so on a JAX that still has them nothing changes.
Nothing here touches ``jax_enable_x64`` or any other global setting.  Use :func:`import_neural_tangents`
(or ``bayes_mogp.kernels.nt``) rather than ``import neural_tangents``.
"""

from __future__ import annotations

import sys
import types

__all__ = ["apply_patches", "import_neural_tangents", "PATCHED_NAMES"]

PATCHED_NAMES: list[str] = []  # names actually restored in this process (for diagnostics)


class _NoExperimental(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise ImportError(
            f"neural_tangents.experimental.{name} needs TensorFlow, which bayes-mogp keeps out of the "
            "environment (see bayes_mogp/kernels/_nt_compat.py)"
        )


def apply_patches() -> None:
    """Restore the removed JAX names neural-tangents 0.6.5 imports (idempotent)."""
    import jax
    import jax.core
    import jax.interpreters.ad as ad
    import jax.random

    try:
        import jax.extend.core as ext_core
    except ImportError:  # pragma: no cover - very old JAX has them in jax.core already
        ext_core = None
    for name in ("Jaxpr", "JaxprEqn", "Literal", "Var", "Primitive"):
        if not hasattr(jax.core, name) and ext_core is not None and hasattr(ext_core, name):
            setattr(jax.core, name, getattr(ext_core, name))
            PATCHED_NAMES.append(f"jax.core.{name}")
    if "jax.util" not in sys.modules:
        try:
            import jax.util  # noqa: F401
        except ImportError:
            from jax._src import util as _util

            mod = types.ModuleType("jax.util")
            mod.__dict__.update({k: v for k, v in vars(_util).items() if not k.startswith("__")})
            sys.modules["jax.util"] = mod
            jax.util = mod
            PATCHED_NAMES.append("jax.util")
    if not hasattr(jax.random, "KeyArray"):
        jax.random.KeyArray = jax.Array
        PATCHED_NAMES.append("jax.random.KeyArray")
    if not hasattr(ad, "zeros_like_p"):
        ad.zeros_like_p = jax.core.Primitive("zeros_like")
        PATCHED_NAMES.append("jax.interpreters.ad.zeros_like_p")
    if "neural_tangents.experimental" not in sys.modules:
        try:
            import tensorflow  # noqa: F401
        except ImportError:
            sys.modules["neural_tangents.experimental"] = _NoExperimental("neural_tangents.experimental")
            PATCHED_NAMES.append("neural_tangents.experimental (placeholder, no TensorFlow)")


def import_neural_tangents():
    """Return the ``neural_tangents`` module, applying :func:`apply_patches` first."""
    if "neural_tangents" in sys.modules and hasattr(sys.modules["neural_tangents"], "stax"):
        return sys.modules["neural_tangents"]
    apply_patches()
    import neural_tangents

    return neural_tangents
