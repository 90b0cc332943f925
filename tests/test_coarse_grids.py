"""A coarse alpha grid costs at most what the fine grid costs (issue: 5 alphas on
riboflavin ran for over 600 s and 12 GB where 100 alphas took 11 s)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import correlated_problem, shared_path
from elasticnet_dist import enet_path
from elasticnet_dist.solvers.path import MAX_STEP_RATIO


def _solved_alphas(monkeypatch, **options):
    """The alphas a path solves (its grid's and the cut steps')."""
    import elasticnet_dist.solvers.path as path_module

    seen, solve = [], path_module._solve_point

    def recording(unit, alpha, *args):
        seen.append(float(alpha))
        return (yield from solve(unit, alpha, *args))

    monkeypatch.setattr(path_module, "_solve_point", recording)
    result = enet_path(*correlated_problem(60, 300, seed=4, n_informative=10), l1_ratio=1.0,
                       gram_max_features=0, **options)
    return result, seen


def test_long_steps_are_cut_only_where_many_features_would_enter(monkeypatch):
    fine, solved = _solved_alphas(monkeypatch, n_alphas=100, eps=1e-2)
    assert fine.alphas[0] / fine.alphas[1] < MAX_STEP_RATIO
    np.testing.assert_array_equal(solved, fine.alphas)  # the fine grid is walked as given
    coarse, solved = _solved_alphas(monkeypatch, alphas=fine.alphas[[0, 50, 99]])
    steps = np.array(solved)
    assert set(coarse.alphas) <= set(steps) and len(steps) > 3
    assert np.all(np.diff(steps) < 0)  # downwards, never past a grid point
    assert np.max(steps[:-1] / steps[1:]) < fine.alphas[0] / fine.alphas[50]


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_a_coarse_path_is_the_fine_path_at_its_alphas(loss):
    X, y = correlated_problem(60, 150, seed=3, loss=loss, n_informative=8)  # p > n
    fine = enet_path(X, y, loss=loss, l1_ratio=0.7, n_alphas=100, eps=1e-2, tol=1e-10,
                     gram_max_features=0)
    coarse_alphas = fine.alphas[::33]
    coarse = enet_path(X, y, loss=loss, l1_ratio=0.7, alphas=coarse_alphas, tol=1e-10,
                       gram_max_features=0)
    assert len(coarse.alphas) == len(coarse_alphas)
    scale = np.abs(fine.coefs).max()
    for k, alpha in enumerate(coarse.alphas):
        j = int(np.argmin(np.abs(fine.alphas - alpha)))
        np.testing.assert_allclose(coarse.coefs[:, k], fine.coefs[:, j], atol=1e-5 * scale)
    assert coarse.n_passes <= fine.n_passes


RUN = """
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
from elasticnet_dist import ElasticNetCV
path, loss, n, gram = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
t = time.perf_counter()
est = ElasticNetCV(l1_ratio=[0.5, 0.9, 1.0], alphas=n, cv=5, loss=loss, engine="local",
                   selection="1se", devmax=0.999, fdev=1e-5, gram_max_features=gram)
est.fit(path, label="y")
print(json.dumps({"s": time.perf_counter() - t, "passes": est.n_passes_,
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


@pytest.mark.slow
@pytest.mark.cluster  # the integration tier: whole searches on full real tables
@pytest.mark.parametrize("table, loss, gram", [("riboflavin", "squared", 4096),
                                               ("riboflavin", "squared", 0),
                                               ("Prostate_GE", "logistic", 4096)],
                         ids=["riboflavin-gram", "riboflavin-passes", "prostate-logistic"])
def test_coarse_grids_on_real_tables_cost_no_more_than_the_fine_grid(table, loss, gram):
    path = shared_path("data", "real", table, "%s.parquet" % table)

    def run(n):
        done = subprocess.run([sys.executable, "-c", RUN, str(path), loss, str(n), str(gram)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    fine = run(100)
    for n in (3, 5, 10):
        coarse = run(n)
        # generous bounds on a shared machine; the failure was 50x the time and 5x the memory
        assert coarse["s"] <= 2 * fine["s"] + 10, (n, coarse, fine)
        assert coarse["rss"] <= 1.25 * fine["rss"] + 200e6, (n, coarse, fine)
        assert coarse["passes"] <= fine["passes"], (n, coarse, fine)
