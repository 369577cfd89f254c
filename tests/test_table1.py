"""Table 1 from measurements: small widths, every qualitative cell decided by the rules agrees with the paper."""

import subprocess
import sys

import jax
import pytest

from bayes_mogp.table1 import TABLE1_PAPER, run_table1


@pytest.fixture(scope="module")
def table():
    return run_table1(jax.random.PRNGKey(0), [30, 300, 1000], 1000)


def test_rows_agree_with_paper(table):
    for row in table["rows"]:
        for key, expected in TABLE1_PAPER[row["model"]].items():
            assert row[key] == expected, (row["model"], key, row[key])


def test_bernoulli_active_nodes_and_pruning_falls(table):
    rows = {r["model"]: r for r in table["rows"]}
    # Binomial(p, 2/p) has mean exactly 2; SE sqrt(2/1000) = 0.045
    assert abs(rows["b"]["active_nodes_mean"] - 2.0) < 0.1
    for model in ("b", "c", "d"):
        errs = [w["pruning_error"] for w in rows[model]["measured"]["per_width"]]
        assert errs[-1] < errs[0]
    for model in ("iid", "a"):
        errs = [w["pruning_error"] for w in rows[model]["measured"]["per_width"]]
        assert errs[-1] > 0.5 * errs[0]


@pytest.mark.parametrize("argv,needle", [(["--widths", "10"], "widths"), (["--kappa", "1.5"], "kappa"),
                                         (["--widths", "300", "30"], "widths")])
def test_cli_errors_one_line_exit_2(argv, needle):
    proc = subprocess.run([sys.executable, "-m", "bayes_mogp.cli.main", "table1", *argv],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]
