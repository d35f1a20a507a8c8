"""tools/significance.py: the tests' arithmetic on known cases, and the tool on two tiny
runs (predictions written once, then read back instead of the checkpoints)."""
import csv
import os

import numpy as np
import pytest

from inference.significance import mcnemar, median_index, permutation_p, welch
from inference_helpers import run_tool, tiny_run


def test_the_first_study_figures():
    """The committed d26 study: DFN-MR 92.73/92.87/92.88, ResNet 92.34/92.73/92.59 (%).
    Welch gives t = 2.2, p = 0.12; the exact permutation test only p = 0.2 (the 92.73 tie
    makes a second split as extreme as the observed one)."""
    cross = [100 - x for x in (92.73, 92.87, 92.88)]
    resnet = [100 - x for x in (92.34, 92.73, 92.59)]
    t, df, p = welch(cross, resnet)
    assert t == pytest.approx(-2.2058, abs=1e-4) and p == pytest.approx(0.1245, abs=1e-4)
    assert df == pytest.approx(2.698, abs=1e-3)
    assert permutation_p(cross, resnet) == pytest.approx(0.2)


def test_the_permutation_test_cannot_go_below_two_splits_in_twenty():
    assert permutation_p([1.0, 1.1, 1.2], [2.0, 2.1, 2.2]) == pytest.approx(2 / 20)
    assert permutation_p([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)


def test_mcnemar_counts_only_the_discordant_images():
    a = [1] * 8 + [0] * 2 + [1] * 5 + [0] * 7     # 5 both right, 7 both wrong
    b = [0] * 8 + [1] * 2 + [1] * 5 + [0] * 7
    # two-sided binomial, 2 of 10 discordant: 2 * (1 + 10 + 45) / 1024
    assert mcnemar(a, b) == (8, 2, pytest.approx(112 / 1024))
    assert mcnemar(a, a) == (0, 0, 1.0)


@pytest.mark.parametrize('accs, index', [([0.5, 0.9, 0.7], 2), ([0.1, 0.4, 0.3, 0.2], 3),
                                         ([0.3, 0.3, 0.1], 0)])
def test_the_median_run_is_the_lower_middle_one(accs, index):
    assert median_index(accs) == index


@pytest.mark.slow
def test_the_tool_on_two_runs_scores_once_then_reads_its_predictions(tmp_path_factory,
                                                                      tmp_path):
    cross, resnet = (tiny_run(tmp_path_factory, net, depth)
                     for net, depth in (('cross', 14), ('resnet', 8)))
    out = str(tmp_path / 'predictions.csv')
    argv = ['--a', cross['log'], '--b', resnet['log'], '--predictions', out]
    first = run_tool('significance', *argv)
    assert first.returncode == 0, first.stderr
    assert 'scored' in first.stdout and "Welch" not in first.stdout   # one run a side
    assert 'exact permutation test (2 splits)' in first.stdout
    with open(out) as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:2] == ['image', 'label'] and len(rows[0]) == 4 and len(rows) == 201
    again = run_tool('significance', *argv)
    assert again.returncode == 0 and 'scored' not in again.stdout
    assert again.stdout.splitlines()[-3:] == first.stdout.splitlines()[-3:]
    # a predictions column that does not give the run's logged accuracy is refused
    body = np.array(rows[1:], dtype=np.int64)
    body[:, 2] = (body[:, 1] + 1) % 10                    # every image wrong
    with open(out, 'w', newline='') as handle:
        csv.writer(handle).writerows([rows[0]] + body.tolist())
    bad = run_tool('significance', *argv)
    assert bad.returncode == 2 and bad.stderr.startswith('error: ')
    assert "its predictions give 0.0000" in bad.stderr and len(bad.stderr.splitlines()) == 1
    assert os.path.getsize(out) > 0
