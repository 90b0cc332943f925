"""A search started from a previous run's manifest (``--warm-start``): a window of
the grid around its penalty, every path from its coefficients; the same choice
as the whole search in a fraction of the passes, or the whole search when the
choice falls on the window's edge."""
from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pytest

from conftest import run_cli
from elasticnet_dist import ElasticNetCV
from elasticnet_dist.cli import EXIT_CONFIG, EXIT_MANIFEST, EXIT_OK
from elasticnet_dist.datasets import make_wide_table, write_parquet
from elasticnet_dist.manifest import check_manifest

LOGISTIC = dict(l1_ratio=[0.5, 1.0], cv=4, alphas=60, loss="logistic", selection="1se")


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    """A logistic table of 5 files ("yesterday") and the same with a sixth."""
    root = tmp_path_factory.mktemp("warm")
    table = make_wide_table(3000, 60, n_informative=8, seed=21, loss="logistic")
    every = write_parquet(table, str(root / "all"), n_files=6)
    before = root / "before"
    before.mkdir()
    for i in range(5):
        shutil.copy(os.path.join(every, "part-%05d.parquet" % i), before)
    return str(before), every


@pytest.fixture(scope="module")
def searches(grown):
    """Yesterday's search (5 files) and today's whole search (6 files)."""
    before, after = grown
    return (ElasticNetCV(**LOGISTIC).fit(before, label="y"),
            ElasticNetCV(**LOGISTIC).fit(after, label="y"))


def _manifest_of(est, loss="logistic", scale=1.0):
    """The parts of a manifest a warm start reads, from a fitted search."""
    return {"target": {"loss": loss},
            "penalty": {"alpha": est.alpha_ * scale, "l1_ratio": est.l1_ratio_},
            "intercept": est.intercept_,
            "selected": [{"name": name, "coefficient": float(c)}
                         for name, c in zip(est.feature_names_in_, est.coef_, strict=True)
                         if c != 0]}


def test_a_warm_search_chooses_as_the_whole_search_in_fewer_passes(grown, searches):
    after = grown[1]
    yesterday, whole = searches
    warm = ElasticNetCV(**LOGISTIC, warm_start_from=_manifest_of(yesterday)).fit(
        after, label="y")
    info = warm.warm_start_info_
    assert not info["fell_back"] and info["window_passes"] == warm.n_passes_
    assert warm.alphas_.shape == (2, 31)  # 31 points of the 60 per l1_ratio
    assert np.isin(warm.alphas_, whole.alphas_).all()  # the whole grid's own points
    assert warm.alpha_ == whole.alpha_ and warm.l1_ratio_ == whole.l1_ratio_
    np.testing.assert_allclose(warm.coef_, whole.coef_, rtol=1e-6,
                               atol=1e-6 * np.abs(whole.coef_).max())
    assert warm.n_passes_ < 0.7 * whole.n_passes_, (warm.n_passes_, whole.n_passes_)


def test_a_choice_on_the_window_edge_searches_the_whole_grid(grown, searches, caplog):
    after = grown[1]
    yesterday, whole = searches
    far = _manifest_of(yesterday, scale=1 / 30)  # far below today's: the window misses it
    with caplog.at_level("WARNING", logger="elasticnet_dist"):
        warm = ElasticNetCV(**LOGISTIC, warm_start_from=far).fit(after, label="y")
    assert warm.warm_start_info_["fell_back"] and "edge of the window" in caplog.text
    assert np.array_equal(warm.coef_, whole.coef_) and warm.alpha_ == whole.alpha_
    assert warm.n_passes_ == whole.n_passes_ + warm.warm_start_info_["window_passes"]


def test_the_one_pass_route_solves_only_the_window_too(grown):
    _, after = grown
    squared = dict(l1_ratio=[0.5, 1.0], cv=4, alphas=60)
    whole = ElasticNetCV(**squared).fit(after, label="y")
    warm = ElasticNetCV(**squared, warm_start_from=_manifest_of(whole, "squared")).fit(
        after, label="y")
    assert warm.route_ == "gram" and warm.n_passes_ == whole.n_passes_ == 1
    assert warm.alphas_.shape == (2, 31) and not warm.warm_start_info_["fell_back"]
    assert warm.alpha_ == whole.alpha_ and warm.l1_ratio_ == whole.l1_ratio_
    np.testing.assert_allclose(warm.coef_, whole.coef_, rtol=1e-6,
                               atol=1e-6 * np.abs(whole.coef_).max())


def test_a_manifest_of_another_loss_is_refused(grown):
    _, after = grown
    with pytest.raises(ValueError, match="loss='squared'.*loss='logistic'"):
        ElasticNetCV(**LOGISTIC, warm_start_from={
            "target": {"loss": "squared"}, "penalty": {"alpha": 0.1, "l1_ratio": 1.0},
            "intercept": 0.0, "selected": []}).fit(after, label="y")


@pytest.mark.cluster  # whole-stage runs in processes of their own
def test_the_stage_starts_from_the_previous_manifest(grown, tmp_path):
    before, after = grown
    common = ["select", "--label", "y", "--loss", "logistic", "--engine", "local",
              "--n-alphas", "60", "--l1-ratios", "0.5,1", "--cv", "4", "--no-report"]
    assert run_cli(*common, "--input", before, "--output", tmp_path / "a").returncode == EXIT_OK
    previous = tmp_path / "a" / "manifest.json"
    run = run_cli(*common, "--input", after, "--output", tmp_path / "b", "--warm-start",
                  previous)
    assert run.returncode == EXIT_OK, run.stderr
    searched = re.search(r"warm start: (\d+) of 60 alphas per l1_ratio", run.stderr)
    assert searched and 31 <= int(searched.group(1)) < 60  # from 15 above the chosen
    # alpha to 15 below the best score's
    document = json.loads((tmp_path / "b" / "manifest.json").read_text())
    check_manifest(document)
    warm = document["selection"]["warm_start"]
    assert warm["baseline"] == str(previous) and warm["fell_back"] is False
    assert warm["window_passes"] == document["solver"]["data_passes"]
    # a schedule's first day: no manifest yet, a warning and the whole grid
    first = run_cli(*common, "--input", after, "--output", tmp_path / "c", "--warm-start",
                    tmp_path / "missing.json")
    assert first.returncode == EXIT_OK and "no manifest at" in first.stderr, first.stderr
    cold = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert "warm_start" not in cold["selection"]
    assert len(cold["selection"]["grid"][0]["alphas"]) == 60
    # bad uses: exit codes, nothing written
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema_version": "1.2"}')
    bad = [(["--warm-start", broken], EXIT_MANIFEST, "search.warm_start"),
           (["--warm-start", previous, "--alpha", "0.1"], EXIT_CONFIG, "penalty.alpha"),
           (["--warm-start", previous, "--loss", "squared"], EXIT_CONFIG, "same loss")]
    for extra, code, words in bad:
        out = tmp_path / ("bad%d" % code)
        run = run_cli(*common, "--input", after, "--output", out, *map(str, extra))
        assert run.returncode == code and words in run.stderr, run.stderr
        assert not (out / "manifest.json").exists()


@pytest.mark.parametrize("engine", ["dask", "spark"])
def test_a_warm_search_on_a_cluster_equals_the_local_one(grown, searches, engine, request):
    client = request.getfixturevalue("dask_client" if engine == "dask" else "spark")
    after = grown[1]
    start = _manifest_of(searches[0])
    here = ElasticNetCV(**LOGISTIC, warm_start_from=start).fit(after, label="y")
    there = ElasticNetCV(**LOGISTIC, warm_start_from=start, engine=engine,
                         cluster=client if engine == "dask" else None).fit(after, label="y")
    assert there.alpha_ == here.alpha_ and there.n_passes_ == here.n_passes_
    np.testing.assert_allclose(there.coef_, here.coef_, rtol=1e-9, atol=1e-12)


def test_the_window_runs_from_above_the_chosen_alpha_to_below_the_best_one():
    from elasticnet_dist.solvers.cv import WarmStart

    grid = np.geomspace(1.0, 1e-3, 100)[None, :].repeat(2, axis=0)
    chosen, best = grid[0, 40], grid[0, 60]
    warm = WarmStart(np.zeros(3), 0.0, chosen, 1.0, best=(best, 1.0))
    firsts, width = warm.windows(grid, np.array([1.0, 0.5]))
    assert width == 60 - 40 + 31 and firsts[0] == 40 - 15
    # at l1_ratio 0.5 the same l1 strength is twice the alpha: the window moves up
    assert firsts[1] == int(np.argmin(np.abs(np.log(grid[1]) - np.log(2 * chosen)))) - 15
    near = WarmStart(np.zeros(3), 0.0, grid[0, 95], 1.0).windows(grid[:1], np.array([1.0]))
    assert tuple(near[0]) == (100 - 31,) and near[1] == 31  # clamped to the grid's end
