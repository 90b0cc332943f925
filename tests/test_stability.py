"""Stability selection (complementary pairs of half-samples made of row groups): the
frequencies against independent fits on each half, the rule that drops unstable
features, the manifest and report, bad options, and the engines."""
from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import run_cli
from elasticnet_dist import ElasticNet, ElasticNetCV
from elasticnet_dist.cli import EXIT_CONFIG, EXIT_OK
from elasticnet_dist.folds import key_folds
from elasticnet_dist.manifest import check_manifest
from elasticnet_dist.solvers.stability import complementary_halves, group_seed

GROUPS, HALVES = 8, 12


def _problem(loss, n=600, p=25, seed=0):
    """A table with an ``id`` key, p features (5 informative, one weak) and ``y``."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    eta = X[:, :4] @ np.array([1.0, -0.8, 0.6, 0.5]) + 0.12 * X[:, 4]
    y = (eta + rng.standard_normal(n) if loss == "squared"
         else (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float))
    table = pa.table({"id": np.arange(n) * 7 + 3, **{"x%02d" % j: X[:, j] for j in range(p)},
                      "y": y})
    return table, X, y


def test_complementary_halves_pair_every_half_with_its_complement():
    halves = complementary_halves(10, 8, seed=3)
    assert halves.shape == (10, 8) and (halves.sum(axis=1) == 4).all()
    assert (halves[0::2] == ~halves[1::2]).all()
    assert (complementary_halves(10, 8, seed=3) == halves).all()
    assert not (complementary_halves(10, 8, seed=4) == halves).all()
    with pytest.raises(ValueError, match="even counts"):
        complementary_halves(9, 8)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_frequencies_count_independent_fits_on_each_half(loss):
    """Each half-sample's fit at the chosen penalty, refitted alone on the rows of its
    groups (hashed from the key, as the stage assigns them), selects what the batched
    computation counted: on the one-pass route (squared) and the pass route (logistic)."""
    table, X, y = _problem(loss)
    cv = ElasticNetCV(l1_ratio=0.9, cv=4, alphas=30, loss=loss, stability=HALVES,
                      stability_groups=GROUPS, tol=1e-10).fit(table, label="y", keys=["id"])
    info = cv.stability_info_
    assert info["route"] == ("gram" if loss == "squared" else "passes")
    assert info["converged"] == HALVES and info["alpha"] == cv.alpha_
    group = key_folds(table, ["id"], GROUPS, group_seed(0))
    assert info["group_rows"] == np.bincount(group, minlength=GROUPS).tolist()
    counts = np.zeros(X.shape[1])
    for half in complementary_halves(HALVES, GROUPS, seed=0):
        rows = half[group]
        fit = ElasticNet(alpha=cv.alpha_, l1_ratio=0.9, loss=loss, tol=1e-12,
                         max_iter=10_000).fit(X[rows], y[rows])
        counts += fit.coef_ != 0
    np.testing.assert_array_equal(cv.stability_, counts / HALVES)
    assert (cv.stability_[:4] == 1).all()  # the strong features in every half
    assert 0 < cv.stability_.mean() < 1


def test_min_stability_drops_the_unstable_from_the_support_only():
    table, X, y = _problem("squared", seed=1)
    options = dict(l1_ratio=1.0, cv=4, alphas=30, stability=HALVES, stability_groups=GROUPS,
                   selection="min")
    plain = ElasticNetCV(**options).fit(table, label="y", keys=["id"])
    strict = ElasticNetCV(**options, min_stability=0.9).fit(table, label="y", keys=["id"])
    np.testing.assert_array_equal(strict.coef_, plain.coef_)  # the same fit
    np.testing.assert_array_equal(strict.stability_, plain.stability_)
    expected = (plain.coef_ != 0) & (plain.stability_ >= 0.9)
    np.testing.assert_array_equal(strict.get_support(), expected)
    assert expected.sum() < (plain.coef_ != 0).sum()  # the rule dropped some here


def test_the_stage_writes_frequencies_into_the_manifest_and_the_report(tmp_path):
    table, _, _ = _problem("squared", seed=1)
    (tmp_path / "t").mkdir()
    pq.write_table(table.slice(0, 300), tmp_path / "t" / "a.parquet")
    pq.write_table(table.slice(300), tmp_path / "t" / "b.parquet")
    done = run_cli("select", "--input", tmp_path / "t", "--label", "y", "--keys", "id",
                "--l1-ratios", "1", "--cv", "4", "--n-alphas", "30", "--selection", "min",
                "--stability", HALVES, "--min-stability", "0.9", "--engine", "local",
                "--output", tmp_path / "o")
    assert done.returncode == EXIT_OK, done.stderr[-2000:]
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    check_manifest(manifest)
    stability = manifest["stability"]
    assert stability["n_subsamples"] == HALVES and stability["min_stability"] == 0.9
    assert stability["method"] == "complementary_pairs" and stability["data_passes"] == 1
    assert all(f["stability"] >= 0.9 for f in manifest["selected"])
    unstable = [d for d in manifest["dropped"] if d["reason"] == "unstable"]
    assert unstable and all(0 < d["stability"] < 0.9 for d in unstable)
    features = [c["name"] for c in manifest["reduced_schema"] if c["role"] == "feature"]
    assert not {d["name"] for d in unstable} & set(features)
    html = (tmp_path / "o" / "report.html").read_text()
    assert "%d half-samples of 16 row groups" % HALVES in html
    assert "Dropped, but selected by some half-samples" in html
    assert "stability: %d half-samples" % HALVES in done.stderr  # the log says what ran
    assert re.search(r"stability over %d half-samples: \d+ of the selected features chosen "
                     r"in at least 90%% of them; %d dropped below min_stability 0.9"
                     % (HALVES, len(unstable)), done.stderr)


@pytest.mark.parametrize("args, match", [
    (["--stability", "7"], "search.stability must be even"),
    (["--min-stability", "0.8"], "search.min_stability .* set search.stability"),
    (["--stability", "10", "--alpha", "0.1"], "search.stability .* penalty.alpha fixes it"),
])
def test_bad_stability_options_are_named(tmp_path, args, match):
    table, _, _ = _problem("squared", n=40)
    pq.write_table(table, tmp_path / "t.parquet")
    done = run_cli("select", "--input", tmp_path / "t.parquet", "--label", "y", *args,
                "--engine", "local", "--output", tmp_path / "o")
    assert done.returncode == EXIT_CONFIG, done.stderr[-2000:]
    assert re.search(match, done.stderr), done.stderr[-2000:]
    assert not (tmp_path / "o" / "manifest.json").exists()


@pytest.mark.parametrize("kwargs, match", [
    ({"stability": 5}, "stability must be even"),
    ({"stability": 10, "stability_groups": 9}, "stability_groups must be even"),
    ({"min_stability": 0.5}, "min_stability=0.5 .* set stability"),
    ({"stability": 10, "min_stability": 1.5}, "min_stability must be a number"),
])
def test_bad_stability_parameters_are_named(kwargs, match):
    _, X, y = _problem("squared", n=40)
    with pytest.raises(ValueError, match=match):
        ElasticNetCV(**kwargs).fit(X, y)


@pytest.mark.cluster
@pytest.mark.parametrize("engine", ["dask", "spark"])
def test_every_engine_gives_the_same_frequencies(tmp_path, engine, request):
    cluster = request.getfixturevalue("dask_client" if engine == "dask" else "spark")
    table, _, _ = _problem("logistic", seed=2)
    for i in range(3):
        pq.write_table(table.slice(200 * i, 200), tmp_path / ("part-%d.parquet" % i))
    options = dict(l1_ratio=1.0, cv=3, alphas=20, loss="logistic", stability=HALVES,
                   stability_groups=GROUPS)
    here = ElasticNetCV(**options).fit(str(tmp_path), label="y")
    there = ElasticNetCV(**options, engine=engine, cluster=cluster).fit(str(tmp_path),
                                                                       label="y")
    assert there.alpha_ == here.alpha_
    np.testing.assert_array_equal(there.stability_, here.stability_)
    assert there.stability_info_["group_rows"] == here.stability_info_["group_rows"]


def test_a_group_without_rows_is_named_as_a_group():
    _, X, y = _problem("squared", n=12)
    with pytest.raises(ValueError, match=r"stability selection's 16 row groups: group \d+ of "
                                         r"16 holds no rows .* fewer groups"):
        ElasticNetCV(cv=3, stability=10).fit(X, y)
