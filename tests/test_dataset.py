"""The supervised-data container: arrays, npz, CSV; transforms and their inverses; one-line errors."""

import numpy as np
import pytest

from bayes_mogp.data import DataError, from_arrays, load_csv, load_inputs, load_npz


def _reg_arrays(seed=0, n=30, m=10, d=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=5.0, scale=3.0, size=(n + m, d))
    y = 100.0 + 10.0 * x[:, 0] + rng.normal(size=n + m)
    return x[:n], y[:n], x[n:], y[n:]


def test_regression_arrays_are_standardised_and_invertible():
    xtr, ytr, xte, yte = _reg_arrays()
    d = from_arrays(xtr, ytr, xte, yte)
    assert d.task == "regression" and d.num_outputs == 1 and d.y_train.shape == (30, 1)
    xs = d.inputs()
    np.testing.assert_allclose(xs.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(xs.std(0), 1.0, rtol=1e-12)
    t = d.targets()
    np.testing.assert_allclose([t.mean(), t.std()], [0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(d.target_transform.inverse_mean(t), d.y_train, rtol=1e-12)
    np.testing.assert_allclose(d.target_transform.inverse_scale(np.ones(1)), ytr.std(), rtol=1e-12)
    # the fingerprint follows the training arrays, not the test part
    assert d.fingerprint == from_arrays(xtr, ytr).fingerprint != from_arrays(xtr, ytr + 1).fingerprint


def test_classification_labels_one_hot_and_classes():
    x = np.random.default_rng(0).normal(size=(12, 2))
    d = from_arrays(x[:8], labels_train=np.array([0, 1, 2, 0, 1, 2, 0, 1]), x_test=x[8:],
                    labels_test=np.array([3, 0, 1, 2]))
    assert d.task == "classification" and d.num_classes == 4  # a class seen only in the test part counts
    t = d.targets()
    assert t.shape == (8, 4)
    np.testing.assert_allclose(t.sum(1), 0.0, atol=1e-12)  # one-hot minus 1/C: zero mean over classes
    np.testing.assert_allclose(t[0], [0.75, -0.25, -0.25, -0.25])


def test_unit_input_transform_divides_pixels_by_255_and_round_trips():
    from bayes_mogp.data import InputTransform

    pixels = np.random.default_rng(1).integers(0, 256, size=(6, 784)).astype(np.float64)
    d = from_arrays(pixels[:4], labels_train=np.array([0, 1, 0, 1]), x_test=pixels[4:], labels_test=np.array([1, 0]),
                    input_transform="unit")
    np.testing.assert_array_equal(d.inputs(), pixels[:4] / 255.0)
    back = InputTransform.from_arrays(d.input_transform.to_arrays())
    assert back.kind == "unit"
    np.testing.assert_array_equal(back(pixels[4:]), pixels[4:] / 255.0)
    with pytest.raises(ValueError, match="input transform must be one of"):
        from_arrays(pixels[:4], labels_train=np.array([0, 1, 0, 1]), input_transform="pixels")


def test_npz_round_trip_and_predict_inputs(tmp_path):
    xtr, ytr, xte, yte = _reg_arrays()
    p = tmp_path / "d.npz"
    np.savez(p, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    d = load_npz(p)
    assert d.name == "npz:d.npz" and d.n_test == 10
    np.testing.assert_array_equal(d.x_test, xte)
    only = load_inputs(p)
    assert set(only) == {"x_test", "y_test"} and only["x_test"].shape == (10, 3)


@pytest.mark.parametrize("case, message", [
    ("missing_x_test", "missing key 'x_test' (has: x_train, y_test, y_train)"),
    ("no_targets", "needs y_train/y_test (regression) or labels_train/labels_test"),
    ("both_targets", "found both"),
    ("nan", "key 'x_train' contains 1 NaN/Inf value(s)"),
    ("ragged_cols", "key 'x_test' has 2 columns, x_train has 3"),
    ("ragged_rows", "key 'y_train' has 29 rows, x_train has 30"),
    ("labels_float", "key 'labels_train' holds non-integer values"),
    ("object", "holds Python objects"),
    ("not_npz", "not an .npz archive"),
    ("truncated", "not an .npz archive"),
    ("missing_file", "file not found"),
])
def test_npz_errors_name_the_file_and_key(case, message, tmp_path):
    xtr, ytr, xte, yte = _reg_arrays()
    p = tmp_path / "d.npz"
    arrays = dict(x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    if case == "missing_x_test":
        arrays.pop("x_test")
    elif case == "no_targets":
        arrays.pop("y_train"), arrays.pop("y_test")
    elif case == "both_targets":
        arrays.update(labels_train=np.zeros(30, int), labels_test=np.zeros(10, int))
    elif case == "nan":
        arrays["x_train"] = xtr.copy()
        arrays["x_train"][2, 1] = np.nan
    elif case == "ragged_cols":
        arrays["x_test"] = xte[:, :2]
    elif case == "ragged_rows":
        arrays["y_train"] = ytr[:29]
    elif case == "labels_float":
        arrays = dict(x_train=xtr, labels_train=ytr, x_test=xte, labels_test=np.zeros(10, int))
    if case == "object":
        np.savez(p, x_train=np.array([[1, "a"]], dtype=object), y_train=ytr, x_test=xte, y_test=yte)
    elif case == "not_npz":
        p.write_text("x,y\n1,2\n")
    elif case == "truncated":
        np.savez(p, **arrays)
        p.write_bytes(p.read_bytes()[:100])
    elif case != "missing_file":
        np.savez(p, **arrays)
    with pytest.raises(DataError) as exc:
        load_npz(p)
    msg = str(exc.value)
    assert message in msg and str(p) in msg and "\n" not in msg, msg


def _write_csv(path, rows, header="a,b,price"):
    path.write_text(header + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")


def test_csv_regression_split_and_classification(tmp_path):
    rng = np.random.default_rng(0)
    rows = [(round(a, 3), round(b, 3), round(2 * a - b, 3)) for a, b in rng.normal(size=(50, 2))]
    p = tmp_path / "houses.csv"
    _write_csv(p, rows)
    d = load_csv(p, target="price", seed=1)
    assert d.task == "regression" and (d.n_train, d.n_test) == (40, 10) and d.input_dim == 2
    assert d.name == "csv:houses.csv"
    d2 = load_csv(p, target="price", seed=1)
    np.testing.assert_array_equal(d.x_test, d2.x_test)  # same seed, same split
    q = tmp_path / "species.csv"
    _write_csv(q, [(r[0], r[1], "setosa" if r[2] > 0 else "virginica") for r in rows], header="a,b,species")
    c = load_csv(q, target="species", test_fraction=0.3)
    assert c.task == "classification" and c.num_classes == 2 and c.n_test == 15


@pytest.mark.parametrize("content, target, message", [
    ("a,b,price\n1,2,3\n", "cost", "no column 'cost' (columns: a, b, price)"),
    ("a,b,price\n1,x,3\n4,5,6\n", "price", "column 'b' is not numeric (value 'x')"),
    ("a,b,price\n1,2\n", "price", "line 2 has 2 fields, the header has 3"),
    ("a,b,price\n", "price", "needs a header row and at least one data row"),
])
def test_csv_errors_are_one_line(content, target, message, tmp_path):
    p = tmp_path / "d.csv"
    p.write_text(content)
    with pytest.raises(DataError) as exc:
        load_csv(p, target=target)
    assert message in str(exc.value) and str(p) in str(exc.value)
