"""Memory pressure, for real: Dask workers whose memory limits are smaller than the
table. With ``engine.cache: auto`` the passes read the Parquet files again and the
fit ends with the answer of a cluster that cached everything; with ``memory`` it
stops before loading, saying how much was needed and what to change; workers
paused at their limit stop a pass instead of hanging it."""
from __future__ import annotations

import os
import time

import dask
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import local_dask_client
from elasticnet_dist import ElasticNet, ElasticNetCV
from elasticnet_dist.cli import EXIT_ENGINE, EXIT_OK, main
from elasticnet_dist.datasets import make_wide_table, write_parquet
from elasticnet_dist.engines import LocalEngine
from elasticnet_dist.engines.dask_engine import DaskEngine
from elasticnet_dist.errors import MemoryBudgetError

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

# Each worker process holds 240-280 MB of its own (Python, Dask, Arrow, NumPy) and
# decoding a piece of 4,000 x 1,000 adds 80 MB at the peak: 400 MB workers reached
# 93% of their limit (the nanny restarts a worker at 95%), 600 MB ones stay below
# the 80% at which Dask pauses them.
ROWS, COLUMNS, FILES = 80_000, 1_000, 20  # 0.64 GB decoded as float64
WORKER_LIMIT = "600MB"                    # two of them: blocks may fill 0.6 GB


@pytest.fixture(scope="module")
def big_table(tmp_path_factory):
    folder = tmp_path_factory.mktemp("big")
    rng = np.random.default_rng(61)
    beta = np.zeros(COLUMNS)
    beta[:8] = rng.uniform(1, 2, 8)
    for i in range(FILES):
        X = rng.standard_normal((ROWS // FILES, COLUMNS))
        y = X @ beta + rng.standard_normal(ROWS // FILES)
        columns = {"x%04d" % j: X[:, j] for j in range(COLUMNS)}
        pq.write_table(pa.table({**columns, "y": y}), str(folder / ("part-%02d.parquet" % i)))
    return str(folder)


@pytest.fixture(scope="module")
def small_workers():
    yield from local_dask_client(n_workers=2, memory_limit=WORKER_LIMIT)


def test_a_table_larger_than_the_workers_memory_is_read_again_each_pass(
        big_table, small_workers, dask_client, caplog):
    fit = dict(alpha=0.05, l1_ratio=0.9, solver="newton")
    roomy = ElasticNet(engine="dask", cluster=dask_client, **fit).fit(big_table, label="y")
    assert roomy.fit_report_["bytes_cached"] > 0.4e9
    with caplog.at_level("INFO", logger="elasticnet_dist"):
        tight = ElasticNet(engine="dask", cluster=small_workers, **fit).fit(big_table,
                                                                           label="y")
    assert "the table needs 0.64 GB cached on the dask engine" in caplog.text
    assert "every pass reads the Parquet files again" in caplog.text
    assert tight.fit_report_["bytes_cached"] == 0
    assert tight.n_passes_ == roomy.n_passes_ >= 3
    assert np.array_equal(tight.coef_, roomy.coef_)  # the same sums, read twice
    assert set(np.flatnonzero(tight.coef_)) >= set(range(8))


def test_cache_memory_stops_before_loading_and_names_the_settings(big_table, small_workers,
                                                                  tmp_path, capsys):
    out = tmp_path / "out"
    config = tmp_path / "memory.yaml"
    config.write_text("engine:\n  cache: memory\n")
    t0 = time.perf_counter()
    code = main(["select", "--input", big_table, "--label", "y", "--output", str(out),
                 "--scheduler", small_workers.scheduler.address, "--config", str(config),
                 "--alpha", "0.05"])
    seconds = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert code == EXIT_ENGINE and seconds < 30
    assert "the table needs 0.64 GB cached" in err and "1.20 GB" in err
    assert "engine.cache: auto" in err and "input.dtype: float32" in err
    assert "Traceback" not in err and not out.joinpath("manifest.json").exists()


def test_workers_paused_at_their_limit_stop_the_pass(tmp_path):
    t = make_wide_table(2000, 40, n_informative=4, seed=62)
    path = write_parquet(t, str(tmp_path / "t"), n_files=4)
    # Dask pauses a worker whose process memory exceeds this share of its limit: 2%
    # of 2 GB is below what any worker process holds, so both pause and stay paused.
    # (distributed's defaults are loaded first: the setting would otherwise take
    # them with it when it is undone.)
    pytest.importorskip("distributed")
    with dask.config.set({"distributed.worker.memory.pause": 0.02,
                          "distributed.worker.memory.spill": False,
                          "distributed.worker.memory.target": False}):
        clients = local_dask_client(n_workers=2, memory_limit="2GB")
        client = next(clients)
    try:
        engine = DaskEngine(client, paused_timeout=3)
        t0 = time.perf_counter()
        with pytest.raises(MemoryBudgetError, match="Dask workers have been paused at "
                                                   "their memory limit"):
            ElasticNet(alpha=0.1, engine=engine).fit(path, label="y")
        assert time.perf_counter() - t0 < 60
        engine.close()
    finally:
        next(clients, None)


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_streaming_passes_give_the_cached_answer_to_the_bit(loss, tmp_path):
    t = make_wide_table(900, 30, n_informative=5, seed=63, loss=loss)
    path = write_parquet(t, str(tmp_path / "t"), n_files=11)
    kw = dict(l1_ratio=[0.5, 1.0], cv=3, alphas=12, loss=loss)
    cached = ElasticNetCV(engine=LocalEngine(cache="memory"), **kw).fit(path, label="y")
    streamed = ElasticNetCV(engine=LocalEngine(cache="none"), **kw).fit(path, label="y")
    assert streamed.fit_report_["bytes_cached"] == 0 < cached.fit_report_["bytes_cached"]
    scores = "mse_path_" if loss == "squared" else "scores_"
    for name in ("coef_path_", "intercept_path_", scores):
        assert np.array_equal(getattr(streamed, name), getattr(cached, name), equal_nan=True)


def test_the_stage_config_reaches_the_engine(tmp_path):
    t = make_wide_table(300, 10, n_informative=3, seed=64)
    path = write_parquet(t, str(tmp_path / "t"), n_files=3)
    config = tmp_path / "none.yaml"
    config.write_text("engine:\n  name: local\n  cache: none\n")
    out = tmp_path / "out"
    assert main(["select", "--input", path, "--label", "y", "--output", str(out),
                 "--config", str(config), "--n-alphas", "10", "--no-report"]) == EXIT_OK
    import json

    with open(os.path.join(out, "manifest.json")) as f:
        assert json.load(f)["engine"]["bytes_cached"] == 0
