"""Test configuration and the fixtures shared by the test files.

float64 is on, as in the CLI (``bayes_mogp.numerics.require_x64``).  ``BAYES_MOGP_QUICK=1`` for anything
that reads it.

Session fixtures (computed once, on first use; treat the arrays as read-only):

* ``small_gp`` -- a small regression problem and its kernels: inputs ``x_train`` (15, 4), ``x_test`` (6, 4),
  targets ``y_train`` (15, 2), and the depth-2 ReLU NNGP / NTK blocks (``b_var = 0.1``) ``k``, ``k_test``
  (test x train), ``k_test_test`` and ``t``, ``t_test``, ``t_test_test``.
* ``mnist_split`` -- ``mnist_5k_split(200, 1000, seed=0)``: 200 stratified training images and the fixed
  1000-image test split, preprocessed, with one-hot targets (:class:`bayes_mogp.data.Split`).  Slice it
  (``x_train[:60]``) rather than loading another split.
* ``tiny_bnn`` -- ``(config, X, y)``: a 60-point, 3-class problem and a one-hidden-layer horseshoe BNN for the
  samplers' tests.
* ``mnist_kernels`` -- depth-2 ReLU NNGP and NTK (``w_var = 2``, ``b_var = 0``) on ``mnist_split``'s 200
  training images and 100 of its test images, ten per class (``test = slice(None, None, 10)``: the test
  split is ordered by class): ``k``, ``k_test``, ``k_test_diag``, ``t``, ``t_test``, ``t_test_diag``.

Function fixture ``cli``: ``cli(*argv) -> (exit_code, stdout, stderr)`` runs ``bayes-mogp`` in-process
(argparse's ``SystemExit`` becomes the exit code), and ``cli.one_line_error(err)`` asserts that stderr is
one line without a traceback and returns it.

Slow tests: mark them ``@pytest.mark.slow``.  The default run (``pytest -q``) leaves them out; CI runs
them in a second pass (``pytest -q -m slow``), together with the notebooks.  Both passes run one pytest-xdist
worker per core, whole files per worker (``pyproject.toml``); ``-n 0`` runs in-process (``--pdb``, ``-s``).
Session fixtures are computed once per worker.
"""

import os
from types import SimpleNamespace

# LLVM -O0 for the programs the tests compile (inherited by the notebook kernels and the subprocesses, which
# append their own device count: XLA takes a repeated flag's last value): the
# suite compiles hundreds of small programs and runs most of them briefly, so compilation dominates; at -O0 it
# is about a quarter faster in all (measured: 731 s -> 565 s CPU for the default pass).  XLA's HLO passes
# still run, so the programs are the same and only the machine code differs; the tests' tolerances are derived
# from the mathematics, never from one build's last bits.  The benchmarks and the CLI run at XLA's default level.
# ``--xla_cpu_use_fusion_emitters=false``: XLA's CPU backend emits its fusions by the older elemental emitter,
# which compiles about twice as fast (a tiny BNN's NUTS fit: 7.1 s -> 3.6 s of backend compilation, 14.0 s -> 10.1 s
# in all; the default pass 4 min 29 s -> 3 min 29 s from an empty cache, 2 cores).
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1 --xla_backend_optimization_level=0 "
                                   "--xla_cpu_use_fusion_emitters=false")
os.environ.setdefault("BAYES_MOGP_QUICK", "1")
# The same persistent compilation cache (below) for the notebook kernels, the benchmarks and the CLI
# subprocesses: each repeats programs within itself (a notebook's fits, a benchmark's variants) and with the
# tests (measured: notebook 03 in quick mode 100 s -> 81 s from an empty cache).
_CACHE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".jax_cache")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _CACHE)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
# XLA's persistent compilation cache, in the checkout (a fresh clone starts empty): the suite compiles the same
# programs many times (NumPyro builds new closures for every MCMC/SVI run, so JAX's in-memory cache misses);
# with the cache each distinct program is compiled once per run, across tests and xdist workers.
jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


#: the longest tests and files first (measured on 2 cores, cold cache), so that pytest-xdist hands them out at
#: the start and no worker is left running one of them while the other idles.  The slow pass runs with
#: ``--maxschedchunk 1`` (two tests queued per worker), so the order alternates between the workers' first
#: tests, then whoever is free takes the next.
_LONG_FIRST = ("test_notebook_runs_clean_in_quick_mode[03", "test_notebook_runs_clean_in_quick_mode[06",
               "test_notebook_runs_clean_in_quick_mode[04", "figures_hold[bench_paper_compressibility]",
               "figures_hold[bench_bnn_svi_vs_nuts]", "tests/test_table1.py", "test_notebook_runs_clean_in_quick_mode[01",
               "test_notebook_runs_clean_in_quick_mode[07", "test_notebook_runs_clean_in_quick_mode[08",
               "test_full_size_network_matches_beta", "figures_hold[bench_bnn_geometry]", "figures_hold[bench_bnn]",
               "figures_hold[bench_mogp_teacher]", "figures_hold[bench_bnn_regression]",
               "figures_hold[bench_iterative_gp]", "test_gbfry_with_learned_alpha",
               "test_notebook_runs_clean_in_quick_mode[02", "test_chains_run_in_parallel_across_devices",
               "test_batch_sharded_over_two_devices", "test_notebook_runs_clean_in_quick_mode[05",
               # the default run's files by their measured share (2026-12-05, cold cache), the small ones left to fill in
               "tests/test_bnn.py", "tests/test_priors.py", "tests/test_sgmcmc.py", "tests/test_posterior.py",
               "tests/test_mogp_api.py", "tests/test_kernels.py", "tests/test_nuts.py", "tests/test_iterative_gp.py",
               "tests/test_mogp.py", "tests/test_bnn_models.py", "tests/test_kernel_layers.py", "tests/test_cli_baseline.py",
               "tests/test_mile.py")


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one and a half workers per core, at least 3.  The suite's workers often wait (on notebook
    kernels, CLI and fresh-interpreter subprocesses, files), so a third worker on 2 cores keeps them busy
    (measured on 2 cores from a cold cache: the default run in 335 s with 2 workers, 257 s with 3)."""
    return max(3, (3 * (os.cpu_count() or 2)) // 2)


def pytest_collection_modifyitems(config, items):
    def rank(item):
        return next((i for i, key in enumerate(_LONG_FIRST) if key in item.nodeid), len(_LONG_FIRST))

    items.sort(key=rank)  # stable: the order within a rank is kept


@pytest.fixture(scope="session")
def small_gp():
    from bayes_mogp.kernels import nngp_ntk_kernels

    rng = np.random.default_rng(0)
    x_train, x_test, y_train = rng.normal(size=(15, 4)), rng.normal(size=(6, 4)), rng.normal(size=(15, 2))
    k_all, t_all = (np.asarray(a) for a in nngp_ntk_kernels(np.vstack([x_train, x_test]), depth=2, b_var=0.1))
    n = x_train.shape[0]
    return SimpleNamespace(
        x_train=x_train, x_test=x_test, y_train=y_train,
        k=k_all[:n, :n], k_test=k_all[n:, :n], k_test_test=k_all[n:, n:],
        t=t_all[:n, :n], t_test=t_all[n:, :n], t_test_test=t_all[n:, n:],
    )


@pytest.fixture(scope="session")
def mnist_split():
    from bayes_mogp.data import mnist_5k_split

    return mnist_5k_split(200, 1000, seed=0)


@pytest.fixture(scope="session")
def mnist_kernels(mnist_split):
    from bayes_mogp.kernels import kernel_diagonals, nngp_ntk_kernels

    kw = dict(depth=2, activation="relu", w_var=2.0, b_var=0.0)
    test = slice(None, None, 10)
    x, xs = mnist_split.x_train, mnist_split.x_test[test]
    k, t = (np.asarray(a) for a in nngp_ntk_kernels(x, None, **kw))
    k_test, t_test = (np.asarray(a) for a in nngp_ntk_kernels(xs, x, **kw))
    k_diag, t_diag = (np.asarray(a) for a in kernel_diagonals(xs, **kw))
    return SimpleNamespace(k=k, k_test=k_test, k_test_diag=k_diag, t=t, t_test=t_test, t_test_diag=t_diag,
                           test=test)


@pytest.fixture
def cli(capsys):
    from bayes_mogp.cli.main import main

    def run(*argv):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse errors and --help exit directly
            code = exc.code
        out = capsys.readouterr()
        return code, out.out, out.err

    def one_line_error(err):
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert "Traceback" not in err and "error" in lines[0], err
        return lines[0]

    run.one_line_error = one_line_error
    return run


@pytest.fixture(scope="session")
def clusters():
    """Three separated Gaussian clusters in 6 dimensions: ``x`` (90, 6) and integer ``labels`` (90,); the first 60
    points are the training part (a classification problem any model should solve: chance is 1/3)."""
    rng = np.random.default_rng(0)
    labels = np.arange(90) % 3
    return SimpleNamespace(x=rng.normal(size=(90, 6)) + 2.5 * np.eye(6)[labels], labels=labels)


@pytest.fixture(scope="session")
def tiny_bnn():
    """A tiny BNN problem for the samplers' tests: ``(config, X, y)`` with 60 points in 5 dimensions, 3 classes, one
    hidden layer of 8 ReLU units under a horseshoe with a fixed global scale (the programs, and their compilation,
    which dominates these tests, stay small)."""
    from bayes_mogp.bnn.models import BNNConfig

    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int32) + (X[:, 2] > 1).astype(np.int32)
    config = BNNConfig(d_in=5, d_out=3, widths=(8,), prior="horseshoe", activation="relu", global_scale="fixed")
    return config, X, y
