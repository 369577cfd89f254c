"""Test configuration.  float64 on, as in the CLI (bayes_mogp.numerics.require_x64)."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
os.environ.setdefault("BAYES_MOGP_QUICK", "1")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
