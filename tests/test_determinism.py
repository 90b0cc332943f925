"""Determinism: the same table and configuration give the same manifest, to the
last bit, on every rerun, on every engine, and however the engine splits the
work (Dask workers, Spark task slots). Each block's sums are computed the same
way everywhere and merged in one fixed tree over the table's pieces
(passes.tree_merge), whoever computes which node."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import local_dask_client
from elasticnet_dist import ElasticNetCV
from elasticnet_dist.cli import main
from elasticnet_dist.datasets import make_wide_table, write_parquet
from elasticnet_dist.engines.spark_engine import SparkEngine, slot_range
from elasticnet_dist.manifest import without_volatile
from elasticnet_dist.solvers import routes

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

N_FILES = 11  # pieces that no slot count divides evenly


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    t = make_wide_table(1100, 50, n_informative=6, seed=51)
    keys = np.array(["k%05d" % i for i in range(1100)])
    return write_parquet(t, str(tmp_path_factory.mktemp("det") / "t"), n_files=N_FILES,
                         extra_columns={"id": keys})


@pytest.fixture(scope="module")
def logistic_table(tmp_path_factory):
    t = make_wide_table(900, 30, n_informative=5, seed=52, loss="logistic")
    return write_parquet(t, str(tmp_path_factory.mktemp("detl") / "t"), n_files=N_FILES)


def select(table, output, *flags):
    code = main(["select", "--input", table, "--label", "y", "--keys", "id", "--output",
                 str(output), "--n-alphas", "30", "--progress", "never", *flags])
    assert code == 0
    with open(output / "manifest.json") as f:
        return json.load(f)


def comparable(document):
    """Everything but the time, the timings, where the output went and which engine
    ran (its name, address, workers and partitions)."""
    out = without_volatile(document)
    out.pop("engine")
    del out["config"]["engine"], out["config"]["output"]
    return out


def test_manifests_are_identical_across_reruns_engines_and_workers(table, tmp_path, spark,
                                                                   dask_client):
    ref = select(table, tmp_path / "local", "--engine", "local")
    rerun = select(table, tmp_path / "again", "--engine", "local")
    assert comparable(rerun) == comparable(ref) and rerun["engine"] == ref["engine"]
    runs = {
        "dask, 2 workers": select(table, tmp_path / "dask2", "--scheduler",
                                  dask_client.scheduler.address),
        "spark local[2]": select(table, tmp_path / "spark", "--engine", "spark"),
    }
    for client in local_dask_client(n_workers=1):
        runs["dask, 1 worker"] = select(table, tmp_path / "dask1", "--scheduler",
                                        client.scheduler.address)
    assert runs["dask, 1 worker"]["engine"]["workers"] == 1
    for name, document in runs.items():
        assert comparable(document) == comparable(ref), name
    assert ref["solver"]["data_passes"] == 1 and len(ref["selected"]) > 0


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_spark_task_slots_do_not_change_a_bit(loss, table, logistic_table, spark, monkeypatch):
    # a table this small would be gathered into the driver: keep the passes on Spark
    monkeypatch.setattr(routes, "GATHER_MAX_BYTES", 0)
    kw = dict(l1_ratio=[0.5, 1.0], cv=3, alphas=15, loss=loss)
    source = table if loss == "squared" else logistic_table
    fit = {"label": "y", **({"keys": ["id"]} if loss == "squared" else {})}
    ref = ElasticNetCV(**kw).fit(source, **fit)
    for slots in (1, 2, 3, 5, N_FILES):
        engine = SparkEngine(spark, slots=slots)
        try:
            est = ElasticNetCV(engine=engine, **kw).fit(source, **fit)
        finally:
            engine.close()
        assert est.fit_report_["workers"] >= 1
        for name in ("coef_path_", "intercept_path_", "n_features_path_",
                     "mse_path_" if loss == "squared" else "scores_"):
            assert np.array_equal(getattr(est, name), getattr(ref, name), equal_nan=True), \
                (slots, name)
        assert est.n_passes_ == ref.n_passes_


@pytest.mark.parametrize("n_pieces", [1, 3, 11, 16, 130])
@pytest.mark.parametrize("n_slots", [1, 2, 3, 8])
def test_slots_cover_the_pieces_once_in_runs(n_pieces, n_slots):
    runs = [slot_range(j, n_slots, n_pieces) for j in range(n_slots)]
    assert [i for run in runs for i in run] == list(range(n_pieces))
    if n_pieces >= 8 * n_slots:  # wide enough: runs start at whole groups of 8
        assert all(run.start % 8 == 0 for run in runs)
        assert min(len(run) for run in runs) > 0
