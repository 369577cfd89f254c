"""The activation registry and the kernel layers: against the closed forms, neural-tangents and Monte Carlo."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayes_mogp import activations as A
from bayes_mogp.errors import InputError, InputTypeError
from bayes_mogp.kernels import (
    ACTIVATIONS,
    Activation,
    Dense,
    Kernel,
    Scale,
    Sum,
    add,
    feature_kernel,
    import_neural_tangents,
    nngp_ntk_kernels,
    scale,
    serial,
    stax_activation,
)

RNG = np.random.default_rng(0)
X1 = RNG.normal(size=(6, 5))
X2 = RNG.normal(size=(4, 5))


def _rel(a, b):
    return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


def _mlp(depth, activation, w_var, b_var):
    """The layers of the network of ``closed_form.nngp_kernel`` (``depth`` hidden layers)."""
    return serial(Dense(w_var, b_var), *[serial(Activation(activation), Dense(w_var, b_var))] * depth)


# -- (a) layers == closed form ----------------------------------------------------------------------


@pytest.mark.parametrize("activation,w_var", [("relu", 2.0), ("erf", 1.7), ("abs", 1.3)])
def test_layers_equal_closed_form(activation, w_var):
    """serial(Dense, [Activation, Dense] * L) is closed_form's depth-L network, equal up to rounding (1e-12).

    One closed-form call on the joint inputs gives both the symmetric kernel of X1 and the cross kernel
    X1 x X2.  Exception: the NTK on the diagonal of a symmetric kernel for relu and abs, 1e-7.  There the
    pair has correlation 1, where their derivative maps (linear in theta ~ sqrt(2 (1 - rho))) have
    infinite slope, and both implementations see a last-bit difference between ``sum(x * x)`` and
    ``(x @ x.T)_ii`` (a rounding error eps moves them by ~sqrt(eps) = 1e-8)."""
    n1 = X1.shape[0]
    off = ~np.eye(n1, dtype=bool)
    ill_conditioned = activation in ("relu", "abs")
    for b_var in (0.0, 0.2):
        for depth in (1, 2, 3):
            layer = _mlp(depth, activation, w_var, b_var)
            k_cf, t_cf = nngp_ntk_kernels(np.vstack([X1, X2]), depth=depth, activation=activation, w_var=w_var,
                                          b_var=b_var)
            k, t = layer.kernel_fn(X1, X2)
            assert k.shape == t.shape == (6, 4)
            assert _rel(k, k_cf[:n1, n1:]) < 1e-12 and _rel(t, t_cf[:n1, n1:]) < 1e-12, (b_var, depth)
            full = layer.kernel_fn(X1, None, get=None)
            assert full.nngp.shape == (6, 6) and full.diag2 is full.diag1
            k_cf, t_cf = k_cf[:n1, :n1], t_cf[:n1, :n1]
            assert _rel(full.nngp, k_cf) < 1e-12 and _rel(full.diag1, jnp.diag(k_cf)) < 1e-12
            assert _rel(full.ntk[off], t_cf[off]) < 1e-12
            assert _rel(jnp.diag(full.ntk), jnp.diag(t_cf)) < (1e-7 if ill_conditioned else 1e-12), (b_var, depth)


def test_get_and_jit():
    layer = _mlp(2, "relu", 2.0, 0.1)
    k, t = layer.kernel_fn(X1, X2)
    (k_only,) = layer.kernel_fn(X1, X2, get=("nngp",))
    assert bool(jnp.all(k_only == k)) and bool(jnp.all(layer.kernel_fn(X1, X2, get="ntk") == t))
    assert layer.kernel_fn(X1, X2, get="nngp").shape == (6, 4)
    t_jit, k_jit = jax.jit(layer.kernel_fn, static_argnames="get")(X1, X2, get=("ntk", "nngp"))
    assert _rel(k_jit, k) < 1e-14 and _rel(t_jit, t) < 1e-14
    state = layer.kernel_fn(X1, X2, get=None)
    assert isinstance(state, Kernel) and state.diag1.shape == (6,) and state.diag2.shape == (4,)


# -- (b) layers == neural-tangents ------------------------------------------------------------------


def _nt_layers(stax, spec):
    out = []
    for item in spec:
        if item[0] == "dense":
            out.append(stax.Dense(1, W_std=math.sqrt(item[1]), b_std=math.sqrt(item[2])))
        else:
            out.append(stax_activation(item[1]))
    return out


def _our_layers(spec):
    return [Dense(item[1], item[2]) if item[0] == "dense" else Activation(item[1]) for item in spec]


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_layers_match_neural_tangents(activation):
    """Layer by layer against neural-tangents' stax, float64, NNGP and NTK to 1e-6 relative (its
    kernels use other but equivalent formulas, e.g. arctan2 vs arccos, hence not to rounding)."""
    stax = import_neural_tangents().stax
    spec = [("dense", 1.5, 0.1), ("act", activation), ("dense", 2.0, 0.0), ("act", activation), ("dense", 0.8, 0.3)]
    ours = serial(*_our_layers(spec))
    _, _, nt_kernel_fn = stax.serial(*_nt_layers(stax, spec))
    for x2 in (X2, None):
        k, t = ours.kernel_fn(X1, x2)
        nt = nt_kernel_fn(X1, x2, ("nngp", "ntk"))
        assert _rel(k, nt.nngp) < 1e-6 and _rel(t, nt.ntk) < 1e-6


@pytest.mark.filterwarnings("ignore:`FanIn` layers assume independent inputs")
def test_sum_layer_matches_neural_tangents_fan_in_sum():
    """Sum(a, b) is stax's FanOut(2) -> parallel(a, b) -> FanInSum (independent branches)."""
    stax = import_neural_tangents().stax
    branch_a = [("act", "relu"), ("dense", 2.0, 0.1)]
    branch_b = [("act", "erf"), ("dense", 0.7, 0.0)]
    ours = serial(Dense(1.2, 0.1), Sum(serial(*_our_layers(branch_a)), serial(*_our_layers(branch_b))),
                  Activation("relu"), Dense(2.0, 0.0))
    _, _, nt_kernel_fn = stax.serial(
        stax.Dense(1, W_std=math.sqrt(1.2), b_std=math.sqrt(0.1)),
        stax.FanOut(2),
        stax.parallel(stax.serial(*_nt_layers(stax, branch_a)), stax.serial(*_nt_layers(stax, branch_b))),
        stax.FanInSum(),
        stax.Relu(),
        stax.Dense(1, W_std=math.sqrt(2.0), b_std=0.0),
    )
    k, t = ours.kernel_fn(X1, X2)
    nt = nt_kernel_fn(X1, X2, ("nngp", "ntk"))
    assert _rel(k, nt.nngp) < 1e-6 and _rel(t, nt.ntk) < 1e-6


# -- (c) the registry ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mc_draws():
    """1e5 draws of z ~ N(0, cov) for a fixed 3 x 3 covariance (unequal variances, correlations of both signs)."""
    cov = np.array([[1.0, 0.5, -0.3], [0.5, 0.7, 0.2], [-0.3, 0.2, 1.4]])
    z = np.random.default_rng(1).multivariate_normal(np.zeros(3), cov, size=100_000)
    return jnp.asarray(cov), jnp.asarray(z)


@pytest.mark.parametrize("name", A.CLOSED_FORM_NAMES)
def test_registry_maps_match_monte_carlo(name, mc_draws):
    """``expectation``, ``derivative_expectation`` and their ``diag`` against the mean over 1e5 draws.

    Tolerance: 5 Monte Carlo standard errors of each entry (estimated from the same draws; plus 1e-12
    for the exactly constant products of ``identity``), a two-sided normal tail of 6e-7 per entry for
    a correct formula; a wrong one (e.g. relu without the sqrt term, an error of order 0.1) fails."""
    cov, z = mc_draws
    entry = A.get_activation(name)
    dfn = jax.vmap(jax.vmap(jax.grad(entry.fn)))
    var = jnp.diag(cov)
    k11, k22 = var[:, None], var[None, :]
    for vals, pair, diag in ((entry.fn(z), entry.expectation, entry.diag),
                             (dfn(z), entry.derivative_expectation, entry.derivative_diag)):
        prod = vals[:, :, None] * vals[:, None, :]
        mc, se = prod.mean(0), prod.std(0) / np.sqrt(prod.shape[0])
        exact = pair(k11, k22, cov)
        assert exact.shape == (3, 3)
        assert bool(jnp.all(jnp.abs(exact - mc) <= 5 * se + 1e-12)), (name, pair.__name__, exact - mc, se)
        assert bool(jnp.all(diag(var) == jnp.diag(exact)))  # the diagonal fast path is the pair map at (k, k, k)


def test_registry_contents():
    assert A.CLOSED_FORM_NAMES == ACTIVATIONS == ("relu", "abs", "erf", "identity", "sin", "cos")
    assert set(A.ACTIVATION_NAMES) == set(ACTIVATIONS) | {"tanh", "gelu"}
    # the functions other modules used before the registry, so switching to it changes no number
    assert A.get_activation("relu").fn is jax.nn.relu
    assert A.get_activation("tanh").fn is jnp.tanh
    assert A.get_activation("erf").fn is jax.scipy.special.erf
    assert A.get_activation("gelu").fn is jax.nn.gelu
    for name in ("tanh", "gelu"):
        entry = A.get_activation(name)
        assert not entry.has_closed_form and entry.derivative_expectation is None and entry.stax_layer is None
    for name in A.CLOSED_FORM_NAMES:
        entry = A.get_activation(name)
        assert entry.name == name and entry.derivative_expectation is not None and entry.stax_layer is not None
    with pytest.raises(AttributeError):  # entries are frozen
        A.get_activation("relu").fn = jnp.tanh


def test_tables_use_the_registry():
    """networks.ACTIVATIONS and the stax layers come from the registry (bayes_mogp.mogp's tables are left
    to tests/test_mogp*.py: importing it costs seconds)."""
    from bayes_mogp.networks import ACTIVATIONS as NET_ACTIVATIONS

    assert set(NET_ACTIVATIONS) == set(A.ACTIVATION_NAMES)
    assert all(fn is A.REGISTRY[name].fn for name, fn in NET_ACTIVATIONS.items())
    x = jnp.linspace(-2.0, 2.0, 7)[:, None]
    for name in A.CLOSED_FORM_NAMES:  # the stax layer computes the registry's function
        _, apply_fn, _ = stax_activation(name)
        assert _rel(apply_fn((), x), A.get_activation(name).fn(x)) < 1e-14, name
    with pytest.raises(ValueError, match="activation"):
        stax_activation("gelu")


def test_bad_names_and_arguments():
    with pytest.raises(ValueError, match="activation must be one of relu, abs, erf"):
        A.get_activation("swish")
    with pytest.raises(InputError, match="activation.*closed-form"):
        A.get_activation("tanh", closed_form=True)
    with pytest.raises(InputError, match="activation.*'tanh' has no closed-form"):
        Activation("tanh")
    with pytest.raises(InputError, match="activation"):
        Activation(["relu"])
    with pytest.raises(InputError, match="phi must be one of"):
        A.get_activation("swish", param="phi")
    with pytest.raises(ValueError, match="w_var"):
        Dense(-1.0)
    with pytest.raises(ValueError, match="b_var"):
        Dense(1.0, -0.5)
    with pytest.raises(InputTypeError, match="layers"):
        serial(Dense(), "relu")
    with pytest.raises(ValueError, match="get"):
        Dense().kernel_fn(X1, get="covariance")
    with pytest.raises(ValueError, match="features"):
        Dense().kernel_fn(X1, X2[:, :3])


# -- (d) sums and scales of kernels -----------------------------------------------------------------------


def test_add_and_scale():
    """add(scale(K1, s), K2) = s K1 + K2 entry by entry: here the MoGP kernel s K_phi + Phi diag(lam) Phi^T."""
    s = 0.7
    k_phi = serial(Dense(2.0, 0.1), Activation("relu")).kernel_fn(X1, X2, get=None)
    phi1, phi2, lam = RNG.normal(size=(6, 3)), RNG.normal(size=(4, 3)), np.array([2.0, 0.5, 0.1])
    feats = feature_kernel(phi1, phi2, lam)
    assert _rel(feats.nngp, (phi1 * lam) @ phi2.T) < 1e-14
    total = add(scale(k_phi, s), feats)
    for field in ("nngp", "diag1", "diag2"):
        expected = s * getattr(k_phi, field) + getattr(feats, field)
        assert _rel(getattr(total, field), expected) < 1e-14, field
    assert total.ntk is None  # the features carry no NTK
    # both with an NTK: it adds too; the Scale and Sum layers are scale and add
    a, b = _mlp(1, "relu", 2.0, 0.1), _mlp(2, "erf", 1.5, 0.0)
    ka, kb = a.kernel_fn(X1, X2, get=None), b.kernel_fn(X1, X2, get=None)
    both = add(scale(ka, s), kb)
    assert _rel(both.ntk, s * ka.ntk + kb.ntk) < 1e-14
    layered = Sum(serial(a, Scale(s)), b).kernel_fn(X1, X2, get=None)
    for field in Kernel._fields:
        assert _rel(getattr(layered, field), getattr(both, field)) < 1e-14, field
    with pytest.raises(InputError, match="shape"):
        add(ka, a.kernel_fn(X1, None, get=None))


def test_kernels_are_differentiable_in_w_var_and_b_var():
    # central finite differences in float64, step 1e-6: truncation error O(1e-12), rounding O(1e-10)
    from bayes_mogp.kernels import nngp_kernel

    x = np.random.default_rng(3).normal(size=(5, 3))
    for name in ("w_var", "b_var"):
        def total(v, name=name):
            hyper = {"w_var": 2.0, "b_var": 0.1, name: v}
            return nngp_kernel(x, depth=2, **hyper).sum()

        at = 2.0 if name == "w_var" else 0.1
        fd = (total(at + 1e-6) - total(at - 1e-6)) / 2e-6
        np.testing.assert_allclose(jax.grad(total)(at), fd, rtol=1e-6)
    with pytest.raises(ValueError, match="w_var must be > 0"):
        nngp_kernel(x, depth=1, w_var=jnp.asarray(-1.0))
