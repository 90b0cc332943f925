"""The route's cost model: the one-pass Gram route only where p x p statistics pay
for themselves, the pass route for wide tables; the same answers either way."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import correlated_problem
from elasticnet_dist import ElasticNetCV, enet_path
from elasticnet_dist.datasets import make_wide_table, write_parquet
from elasticnet_dist.solvers import routes
from elasticnet_dist.solvers.routes import (Workload, choose_route, gram_route_bytes,
                                            route_seconds)
from test_safety import _address_space

#: 5 folds x 3 l1_ratios x 100 alphas, as the stage runs them.
CV = dict(n_folds=5, n_problems=18, n_alphas=100, cores=2)


def test_rows_that_dwarf_the_columns_take_the_gram_route_and_wide_tables_the_passes():
    tall = Workload(100_000, 2_000, **CV)
    gram, passes = route_seconds(tall)
    assert gram * 5 < passes  # 100,000 x 2,000: one Gram pass beats 200 passes by far
    assert choose_route("squared", tall, 4096) == "gram"
    riboflavin = Workload(71, 4_088, **CV)
    gram, passes = route_seconds(riboflavin)
    assert passes < gram  # measured: 2.9 s on the pass route, 8.8 s on the Gram route
    assert choose_route("squared", riboflavin, 4096) == "passes"
    # at p = 4,000 the boundary lies between a few hundred and a few thousand rows
    assert choose_route("squared", Workload(200, 4_000, **CV), 4096) == "passes"
    assert choose_route("squared", Workload(5_000, 4_000, **CV), 4096) == "gram"
    # a costly pass (Spark: a job each) moves the boundary towards the one pass
    rows = 1_200
    assert choose_route("squared", Workload(rows, 4_000, **CV), 4096) == "passes"
    spark = Workload(rows, 4_000, pass_overhead=0.15, **CV)
    assert choose_route("squared", spark, 4096) == "gram"


def test_the_cost_grows_as_the_model_says():
    """Columns: the Gram route faster than the pass route, at most quadratically (p x p
    statistics, reads of p-long rows), the pass route at most linearly; rows: both at
    most linearly; alphas: the pass route linearly."""
    g1, p1 = route_seconds(Workload(1_000, 2_000, **CV))
    g2, p2 = route_seconds(Workload(1_000, 4_000, **CV))
    assert p2 / p1 < g2 / g1 <= 4 and 1 < p2 / p1 <= 2
    g1, p1 = route_seconds(Workload(70, 4_000, **CV))
    g2, p2 = route_seconds(Workload(140, 4_000, **CV))
    assert 1 < g2 / g1 <= 2 and 1 < p2 / p1 <= 2
    more = route_seconds(Workload(70, 4_000, n_folds=5, n_problems=18, n_alphas=200, cores=2))
    assert more[1] > 1.9 * p1


def test_points_are_solved_ahead_where_passes_outweigh_the_models_whatever_the_engine(
        caplog):
    """A point solved ahead adds a point per problem to each pass and a model solve
    per step, in fewer passes: it pays where a point's arithmetic in a pass exceeds a
    model solve on the driver, decided by the table alone so that every engine takes
    the same steps."""
    with caplog.at_level("INFO", logger="elasticnet_dist"):
        for overhead in (2e-4, 0.03, 0.15):  # in process, Dask, Spark
            work = dict(pass_overhead=overhead, **CV)
            assert routes.solves_ahead(Workload(100_000, 500, **work))  # measured: faster
            assert routes.solves_ahead(Workload(100_000, 200, hessian_per_pass=True, **work))
            assert not routes.solves_ahead(Workload(71, 4_088, **work))  # riboflavin
            assert not routes.solves_ahead(Workload(1_993, 4_862, **work))  # BASEHOCK
            assert not routes.solves_ahead(Workload(20_000, 8_000, **work))  # large models
    assert "not solving path points ahead: a point's pass arithmetic" in caplog.text
    assert "solving each next path point ahead: a point's pass arithmetic" in caplog.text


def test_caps_and_memory_overrule_the_model(caplog):
    tall = Workload(100_000, 2_000, **CV)
    driver, task = gram_route_bytes(2000, 5)
    assert driver == 14 * 8 * 2000 ** 2 and task == 9 * 5 * 8 * 2000 ** 2
    assert choose_route("squared", tall, 4096, available=64e9, task_limit=8e9) == "gram"
    with caplog.at_level("WARNING", logger="elasticnet_dist"):
        assert choose_route("squared", tall, 4096, available=0.3e9) == "passes"
        assert choose_route("squared", tall, 4096, task_limit=2e9) == "passes"
    assert "0.45 GB on the driver (0.30 GB available)" in caplog.text
    assert "1.44 GB in one merge task on a worker (memory limit 2.00 GB)" in caplog.text
    assert choose_route("squared", Workload(10**7, 5_000, **CV), 4096) == "passes"
    assert choose_route("squared", tall, 1999) == "passes"
    assert choose_route("logistic", Workload(10**7, 10, **CV), 4096) == "passes"


def test_the_choice_is_logged_with_both_estimates(caplog):
    with caplog.at_level("INFO", logger="elasticnet_dist"):
        choose_route("squared", Workload(71, 4_088, **CV), 4096)
        choose_route("squared", Workload(100_000, 2_000, **CV), 4096)
    text = caplog.text
    assert "pass route: 71 rows x 4088 features, estimated" in text
    assert "one-pass Gram route: 100000 rows x 2000 features, estimated" in text


def _wide():
    return correlated_problem(40, 1000, seed=5, scales=(0.5, 4), n_informative=6)


def test_a_wide_table_takes_the_pass_route_and_gets_the_gram_routes_answer(monkeypatch):
    X, y = _wide()
    kw = dict(l1_ratio=[0.5, 1.0], cv=4, alphas=30, tol=1e-10)
    wide = ElasticNetCV(**kw).fit(X, y)
    assert wide.route_ == "passes" and wide.n_passes_ > 1
    monkeypatch.setattr(routes, "route_seconds", lambda work: (0.0, 1.0))  # Gram: cheaper
    gram = ElasticNetCV(**kw).fit(X, y)
    assert gram.route_ == "gram" and gram.n_passes_ == 1
    np.testing.assert_allclose(wide.alphas_, gram.alphas_, rtol=1e-12)
    np.testing.assert_allclose(wide.mse_path_, gram.mse_path_, rtol=1e-6)
    assert (wide.l1_ratio_, wide.alpha_) == (gram.l1_ratio_, gram.alpha_)
    scale = np.abs(gram.coef_).max()
    np.testing.assert_allclose(wide.coef_, gram.coef_, atol=1e-5 * scale)


def test_a_wide_path_takes_the_pass_route_and_gets_the_gram_routes_answer(monkeypatch):
    X, y = _wide()
    wide = enet_path(X, y, l1_ratio=0.8, n_alphas=25, tol=1e-10)
    monkeypatch.setattr(routes, "route_seconds", lambda work: (0.0, 1.0))  # Gram: cheaper
    gram = enet_path(X, y, l1_ratio=0.8, n_alphas=25, tol=1e-10)
    assert wide.route == "passes" and gram.route == "gram"
    np.testing.assert_allclose(wide.coefs, gram.coefs,
                               atol=1e-5 * np.abs(gram.coefs).max())


# ---- 60 rows x 20,000 columns within 4 GB ---------------------------------------------

@pytest.fixture(scope="module")
def short_wide_table(tmp_path_factory):
    """60 rows x 20,000 columns (9.6 MB), three informative: a p x p matrix would be
    3.2 GB, one per fold and l1_ratio on the old Gram route."""
    rng = np.random.default_rng(0)
    n, p = 60, 20_000
    X = rng.standard_normal((n, p))
    y = 2 * X[:, :3].sum(axis=1) + 0.5 * rng.standard_normal(n)
    folder = tmp_path_factory.mktemp("short_wide")
    names = ["f%05d" % j for j in range(p)]
    for loss, label in (("squared", y), ("logistic", (y > 0).astype(np.float64))):
        (folder / loss).mkdir()
        pq.write_table(pa.table({**dict(zip(names, X.T, strict=True)), "y": label}),
                       folder / loss / "part-0.parquet")
    return folder


@pytest.mark.cluster  # whole-stage runs in processes of their own (9 s each on local)
@pytest.mark.parametrize("engine, loss", [("local", "squared"), ("local", "logistic"),
                                          ("dask", "squared")])
def test_sixty_rows_by_twenty_thousand_columns_select_within_4_gb(short_wide_table, tmp_path,
                                                                   engine, loss):
    """``select`` with the default configuration, the process (and, on Dask, each worker
    it starts) limited to 4 GiB of address space by ``setrlimit``."""
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "elasticnet_dist.cli", "select", "--input",
         str(short_wide_table / loss), "--label", "y", "--output", str(out), "--engine", engine,
         "--no-report"], capture_output=True, text=True, timeout=600,
        preexec_fn=_address_space(4 * 2**30))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "cross-validation (passes route)" in done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    selected = {entry["name"] for entry in manifest["selected"]}
    if loss == "squared":  # the three informative columns, at the 1se rule
        assert {"f00000", "f00001", "f00002"} <= selected, sorted(selected)[:20]
    assert len(selected) + len(manifest["dropped"]) == 20_000


# ---- a small table on a cluster: gathered, passes here, the same bits -----------------

@pytest.mark.parametrize("name", ["dask", "spark"])
def test_a_small_table_on_a_cluster_is_gathered_and_gives_the_same_answer(
        name, request, tmp_path, monkeypatch, caplog):
    """200 fixed costs per pass (Dask ~30 ms, Spark ~0.15 s) outweigh a 0.1 MB table:
    its blocks come to the driver once and the passes run here, over the same blocks
    with the same kernels and merge tree as on the engine (BLAS may round a product
    differently in another process: equal to 1e-12)."""
    handle = request.getfixturevalue("dask_client" if name == "dask" else "spark")
    t = make_wide_table(90, 150, n_informative=5, seed=31, loss="logistic")
    path = write_parquet(t, str(tmp_path / "t"), n_files=3)
    kw = dict(l1_ratio=[0.5, 1.0], loss="logistic", cv=3, alphas=12, engine=name,
              cluster=handle)
    with caplog.at_level("INFO", logger="elasticnet_dist"):
        gathered = ElasticNetCV(**kw).fit(path, label="y")
    assert "gathered the table (0.1 MB) into this process" in caplog.text
    monkeypatch.setattr(routes, "GATHER_MAX_BYTES", 0)  # never gather
    caplog.clear()
    with caplog.at_level("INFO", logger="elasticnet_dist"):
        there = ElasticNetCV(**kw).fit(path, label="y")
    assert "gathered" not in caplog.text
    assert gathered.route_ == there.route_ == "passes"
    assert gathered.n_passes_ == there.n_passes_
    assert (gathered.l1_ratio_, gathered.alpha_) == (there.l1_ratio_, there.alpha_)
    np.testing.assert_allclose(gathered.scores_, there.scores_, rtol=1e-12)
    scale = np.abs(there.coef_path_).max()
    np.testing.assert_allclose(gathered.coef_path_, there.coef_path_, atol=1e-12 * scale)
    assert ((gathered.coef_ != 0) == (there.coef_ != 0)).all()


@pytest.mark.parametrize("name", ["dask", "spark"])
def test_paths_solved_ahead_on_a_cluster_give_the_same_answer_in_fewer_passes(
        name, request, tmp_path, monkeypatch, caplog):
    """On the engine (not gathered) every combined pass carries two points per problem
    and fold (the Hessian block at the first serves both): the same bits on a rerun
    (on Dask they differed by 2e-11 before the kernel aligned its requests), the same
    steps as in this process (whose BLAS threads round products differently: equal
    to 1e-9), and the same search as without solving ahead to the solver's tolerance."""
    handle = request.getfixturevalue("dask_client" if name == "dask" else "spark")
    t = make_wide_table(90, 150, n_informative=5, seed=31, loss="logistic")
    path = write_parquet(t, str(tmp_path / "t"), n_files=3)
    kw = dict(l1_ratio=[0.5, 1.0], loss="logistic", cv=3, alphas=12, engine=name,
              cluster=handle, tol=1e-10)
    monkeypatch.setattr(routes, "GATHER_MAX_BYTES", 0)
    monkeypatch.setattr(routes, "MODEL_SECONDS_PER_ELEMENT", -1.0)  # 90 rows: ahead anyway
    with caplog.at_level("INFO", logger="elasticnet_dist"):
        ahead = ElasticNetCV(**kw).fit(path, label="y")
    assert "solving each next path point ahead" in caplog.text
    again = ElasticNetCV(**kw).fit(path, label="y")
    for attr in ("coef_path_", "intercept_path_", "scores_"):  # a rerun: the same bits
        assert np.array_equal(getattr(again, attr), getattr(ahead, attr)), attr
    here = ElasticNetCV(**{**kw, "engine": "local", "cluster": None}).fit(path, label="y")
    assert here.n_passes_ == ahead.n_passes_  # the same steps in this process
    np.testing.assert_allclose(here.coef_path_, ahead.coef_path_, rtol=1e-9, atol=1e-12)
    monkeypatch.setattr(routes, "MODEL_SECONDS_PER_ELEMENT", np.inf)
    plain = ElasticNetCV(**kw).fit(path, label="y")
    assert ahead.route_ == plain.route_ == "passes"
    assert ahead.n_passes_ <= 0.8 * plain.n_passes_, (ahead.n_passes_, plain.n_passes_)
    assert (ahead.l1_ratio_, ahead.alpha_) == (plain.l1_ratio_, plain.alpha_)
    np.testing.assert_allclose(ahead.scores_, plain.scores_, rtol=1e-6)
    scale = np.abs(plain.coef_path_).max()
    np.testing.assert_allclose(ahead.coef_path_, plain.coef_path_, atol=1e-5 * scale)
