"""bayes_mogp/checkpoint.py: array-only sampler checkpoints, their round trip and every refusal."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayes_mogp.checkpoint import FORMAT_VERSION, CheckpointError, load_checkpoint, restore_state, save_checkpoint

STATE = {"z": jnp.arange(6.0, dtype=jnp.float32).reshape(2, 3), "step": jnp.asarray([0.1, 0.2], jnp.float32),
         "key": jnp.zeros((2, 2), jnp.uint32)}
SAMPLES = {"mu": np.arange(8.0).reshape(2, 4)}
STATS = {"diverging": np.zeros((2, 4), bool)}


@pytest.fixture
def ck(tmp_path):
    path = tmp_path / "ck.npz"
    save_checkpoint(path, STATE, SAMPLES, STATS, seconds=1.5, settings={"num_samples": 4}, chunks=[(2, 1.0), (2, .5)])
    return path


def test_round_trip_restores_the_state_and_draws(ck):
    got = load_checkpoint(ck)
    assert got["settings"] == {"num_samples": 4} and got["seconds"] == 1.5 and got["chunks"] == [(2, 1.0), (2, 0.5)]
    np.testing.assert_array_equal(got["samples"]["mu"], SAMPLES["mu"])
    np.testing.assert_array_equal(got["stats"]["diverging"], STATS["diverging"])
    template = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), STATE)
    state = restore_state(got, template)
    for k in STATE:
        np.testing.assert_array_equal(state[k], STATE[k])
        assert state[k].dtype == STATE[k].dtype


def test_no_pickle_is_written_and_a_pickled_leaf_is_refused(ck):
    with np.load(ck, allow_pickle=False) as z:  # the file loads without pickle: arrays only
        arrays = dict(z)
    arrays["state_000"] = np.array([{"a": 1}], dtype=object)
    np.savez(ck, **arrays)
    with pytest.raises(CheckpointError, match="pickled"):
        load_checkpoint(ck)


@pytest.mark.parametrize("change, match", [
    ({"format": np.asarray("something-else")}, "not a bayes-mogp checkpoint"),
    ({"format_version": np.asarray(FORMAT_VERSION + 1)}, f"version {FORMAT_VERSION + 1}"),
    ({"settings": np.asarray("{not json")}, "settings are not JSON"),
    ({"num_state_leaves": np.asarray(5)}, "state leaf 3 missing"),
])
def test_damaged_checkpoints_are_refused_naming_the_file(ck, change, match):
    with np.load(ck) as z:
        arrays = dict(z)
    arrays.update(change)
    np.savez(ck, **arrays)
    with pytest.raises(CheckpointError, match=match) as e:
        load_checkpoint(ck)
    assert str(ck) in str(e.value)


def test_missing_truncated_and_drawless_checkpoints(ck, tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.npz")
    ck.write_bytes(ck.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(ck)
    save_checkpoint(ck, STATE, {}, STATS, seconds=0.0, settings={})
    with pytest.raises(CheckpointError, match="no draws"):
        load_checkpoint(ck)


def test_restore_refuses_another_tree_shape_or_precision(ck):
    got = load_checkpoint(ck)
    fewer = {"z": STATE["z"], "step": STATE["step"]}
    with pytest.raises(CheckpointError, match="has 3 arrays, this model's has 2"):
        restore_state(got, fewer)
    wider = {**STATE, "z": jnp.zeros((2, 4), jnp.float32)}
    with pytest.raises(CheckpointError, match=r"shape \(2, 3\) float32, this model needs \(2, 4\) float32"):
        restore_state(got, wider)
    with jax.enable_x64(True):
        f64 = {**STATE, "step": jnp.zeros(2, jnp.float64)}
        with pytest.raises(CheckpointError, match="precision"):
            restore_state(got, f64)


def test_write_is_atomic_a_failed_write_keeps_the_old_file(ck, monkeypatch):
    before = ck.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(OSError):
        save_checkpoint(ck, STATE, SAMPLES, STATS, seconds=9.0, settings={"num_samples": 99})
    assert ck.read_bytes() == before
    assert json.loads(str(np.load(ck)["settings"])) == {"num_samples": 4}
