"""Worker faults during a fit, injected for real: a Dask worker process killed
(SIGKILL, by its PID) after its blocks were cached and passes had run. The fit
must finish with the same coefficients as an undisturbed run: the lost blocks
are rebuilt from the table, and the partial sums are merged in a fixed order
whichever worker computed them."""
from __future__ import annotations

import logging
import os
import signal
import threading
import time

import numpy as np
import pytest

from conftest import local_dask_client
from elasticnet_dist import ElasticNet, ElasticNetCV
from elasticnet_dist.datasets import make_wide_table, write_parquet
from elasticnet_dist.progress import observing
from elasticnet_dist.solvers import routes

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


class KillAWorkerAt:
    """A progress observer that SIGKILLs one worker process (or all of them, at
    once) after data pass ``at``."""

    def __init__(self, client, at, every=False):
        self.client, self.at, self.every, self.killed = client, at, every, None

    def data_pass(self, number, seconds):
        if number == self.at and self.killed is None:
            pids = self.client.run(os.getpid)  # {worker address: pid}
            victims = sorted(pids) if self.every else sorted(pids)[:1]
            for address in victims:
                os.kill(pids[address], signal.SIGKILL)
            self.killed = victims

    def expect_points(self, total):
        pass

    def path_point(self):
        pass

    def close(self):
        pass


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    t = make_wide_table(900, 30, n_informative=6, seed=5)
    return write_parquet(t, str(tmp_path_factory.mktemp("faults") / "t"), n_files=6)


@pytest.fixture
def fresh_cluster():
    """Its own LocalCluster (2 worker processes under nannies, which restart a killed
    worker): the session's cluster must not lose workers."""
    pytest.importorskip("distributed")
    yield from local_dask_client()


def _fit(est, table, client, kill_at=None, every=False, cache="auto"):
    from elasticnet_dist.engines import make_engine

    engine = make_engine("dask", client, cache=cache)
    est.set_params(engine=engine)
    try:
        if kill_at is None:
            est.fit(table, label="y")
            return None
        killer = KillAWorkerAt(client, kill_at, every)
        with observing(killer):
            est.fit(table, label="y")
        return killer.killed
    finally:
        engine.close()


def test_a_dask_worker_killed_mid_fit_changes_nothing(table, fresh_cluster):
    undisturbed = ElasticNet(alpha=0.02, l1_ratio=0.7, solver="fista", tol=1e-10)
    _fit(undisturbed, table, fresh_cluster)
    assert undisturbed.n_passes_ > 6
    disturbed = ElasticNet(alpha=0.02, l1_ratio=0.7, solver="fista", tol=1e-10)
    killed = _fit(disturbed, table, fresh_cluster, kill_at=3)
    assert killed is not None  # the fault happened, mid-fit
    np.testing.assert_allclose(disturbed.coef_, undisturbed.coef_, rtol=1e-12, atol=0)
    assert disturbed.intercept_ == pytest.approx(undisturbed.intercept_, rel=1e-12)
    assert disturbed.n_passes_ == undisturbed.n_passes_


@pytest.mark.parametrize("cache", ["memory", "none"])
def test_every_dask_worker_killed_at_once_changes_nothing(table, fresh_cluster, cache, caplog):
    """All workers gone at the same moment (a node lost, the nannies restarting
    every worker at its memory limit): Dask leaves the tasks placed on them in
    ``no-worker`` for ever, even after their nannies' new workers join
    (dask/distributed#7346); the engine notices and submits them again."""
    fit = dict(alpha=0.02, l1_ratio=0.7, solver="fista", tol=1e-10)
    undisturbed = ElasticNet(**fit)
    _fit(undisturbed, table, fresh_cluster, cache=cache)
    disturbed = ElasticNet(**fit)
    with caplog.at_level("WARNING", logger="elasticnet_dist"):
        killed = _fit(disturbed, table, fresh_cluster, kill_at=3, every=True, cache=cache)
    assert len(killed) == 2
    assert "submitted again" in caplog.text
    np.testing.assert_allclose(disturbed.coef_, undisturbed.coef_, rtol=1e-12, atol=1e-13)
    assert disturbed.n_passes_ == undisturbed.n_passes_


def test_a_dask_worker_killed_during_a_cv_search_changes_nothing(table, fresh_cluster,
                                                                monkeypatch):
    # a table this small would be gathered into the driver: keep the passes on the workers
    monkeypatch.setattr(routes, "GATHER_MAX_BYTES", 0)
    options = dict(l1_ratio=[0.5, 1.0], alphas=15, cv=3, loss="logistic")
    # the logistic search runs one pass per path step: plenty of passes to fail in
    t = make_wide_table(600, 20, n_informative=4, loss="logistic", seed=8)
    path = write_parquet(t, table + "-logistic", n_files=5)
    undisturbed = ElasticNetCV(**options)
    _fit(undisturbed, path, fresh_cluster)
    disturbed = ElasticNetCV(**options)
    killed = _fit(disturbed, path, fresh_cluster, kill_at=4)
    assert killed is not None
    assert (disturbed.alpha_, disturbed.l1_ratio_) == (undisturbed.alpha_, undisturbed.l1_ratio_)
    np.testing.assert_allclose(disturbed.coef_, undisturbed.coef_, rtol=1e-12, atol=0)
    np.testing.assert_allclose(disturbed.scores_, undisturbed.scores_, rtol=1e-12)


SPARK_SCRIPT = r'''
import json, os, signal, sys, threading, time
from pyspark.sql import SparkSession
from elasticnet_dist import ElasticNet
from elasticnet_dist.progress import observing

def python_workers():
    """PIDs of the Python worker processes forked by pyspark.daemon (not the daemon)."""
    cmd = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    line = f.read().replace(b"\0", b" ").decode()
                with open("/proc/%s/stat" % pid) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            cmd[int(pid)] = (line, ppid)
    daemon = lambda line: "pyspark.daemon" in line
    return [pid for pid, (line, ppid) in cmd.items()
            if daemon(line) and daemon(cmd.get(ppid, ("", 0))[0])]

class Killer:
    """After pass 3: SIGKILL the idle pooled workers, then the first worker forked for
    a running task (that task fails on its first attempt; Spark retries it)."""
    def __init__(self):
        self.killed = []
        self.fitting = True
    def data_pass(self, number, seconds):
        if number == 3 and not self.killed:
            idle = set(python_workers())
            for pid in idle:
                os.kill(pid, signal.SIGKILL)
            threading.Thread(target=self.hunt, args=(idle,), daemon=True).start()
    def hunt(self, idle):
        # until a task has failed or the fit has ended: at most 3 kills (local[2,4]
        # aborts a job whose task fails 4 times), so the fit always survives. (A fixed
        # 20 s window once ended with no worker caught under a full suite's load.)
        while self.fitting and len(self.killed) < 3 and not failed_tasks(spark):
            for pid in python_workers():
                if pid not in idle and pid not in self.killed:
                    os.kill(pid, signal.SIGKILL)
                    self.killed.append(pid)
                    break
            time.sleep(0.002)
    def expect_points(self, total): pass
    def path_point(self): pass
    def close(self):
        self.fitting = False

def failed_tasks(spark):
    tracker, failed = spark.sparkContext.statusTracker(), 0
    for job in tracker.getJobIdsForGroup(None):
        info = tracker.getJobInfo(job)
        for stage in (info.stageIds if info else []):
            s = tracker.getStageInfo(stage)
            failed += s.numFailedTasks if s else 0
    return failed

spark = (SparkSession.builder.master("local[2,4]").appName("faults")
         .config("spark.ui.enabled", "false").config("spark.driver.host", "127.0.0.1")
         .config("spark.driver.bindAddress", "127.0.0.1").getOrCreate())
spark.sparkContext.setLogLevel("OFF")
fits = []
for disturb in (False, True):
    est = ElasticNet(alpha=0.02, l1_ratio=0.7, solver="fista", tol=1e-10, engine="spark",
                     cluster=spark)
    killer = Killer()
    if disturb:
        with observing(killer):
            est.fit(sys.argv[1], label="y")
    else:
        est.fit(sys.argv[1], label="y")
    fits.append({"coef": est.coef_.tolist(), "intercept": est.intercept_,
                 "passes": est.n_passes_, "killed": len(killer.killed),
                 "failed_tasks": failed_tasks(spark)})
print(json.dumps(fits))
'''


def test_spark_python_workers_killed_mid_fit_tasks_retry_and_nothing_changes(tmp_path):
    """Spark local[2,4] (a task may fail 3 times): after the third pass the Python
    worker processes are SIGKILLed, one of them while it runs a task; that task fails
    on its first attempt and Spark retries it on a new worker, which maps the blocks
    from the executor's disk."""
    import json
    import subprocess
    import sys

    pytest.importorskip("pyspark")
    # tasks long enough (tens of ms) for the killer to catch one running
    t = make_wide_table(40_000, 60, n_informative=6, seed=9)
    table = write_parquet(t, str(tmp_path / "t"), n_files=6)
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1",
               SPARK_LOCAL_DIRS=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", SPARK_SCRIPT, table], capture_output=True,
                         text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    undisturbed, disturbed = json.loads(out.stdout.strip().splitlines()[-1])
    assert disturbed["killed"] >= 1 and disturbed["failed_tasks"] >= 1  # the fault happened
    assert undisturbed["failed_tasks"] == 0
    np.testing.assert_allclose(disturbed["coef"], undisturbed["coef"], rtol=1e-12, atol=0)
    assert disturbed["intercept"] == pytest.approx(undisturbed["intercept"], rel=1e-12)
    assert disturbed["passes"] == undisturbed["passes"]


def _kill_every_worker_when(client, prefix, killed, seconds=120):
    """SIGKILL every worker process as soon as a task whose key starts with
    ``prefix`` is running (polled every 5 ms)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        running = client.processing()
        if any(str(key).startswith(prefix) for keys in running.values() for key in keys):
            pids = client.run(os.getpid)
            for address in sorted(pids):
                os.kill(pids[address], signal.SIGKILL)
            killed.extend(sorted(pids))
            return
        time.sleep(0.005)


def test_workers_killed_while_solving_the_cv_paths_changes_nothing(fresh_cluster, tmp_path,
                                                                   caplog):
    """The one-pass route solves its paths as tasks on the Dask workers, from
    statistics scattered to them. Every worker SIGKILLed while those tasks run loses
    that data for good: the driver solves the paths itself, with the same bits."""
    t = make_wide_table(3000, 300, n_informative=20, seed=5)
    path = write_parquet(t, str(tmp_path / "t"), n_files=6)
    undisturbed = ElasticNetCV(cv=5, l1_ratio=[0.2, 0.9])
    _fit(undisturbed, path, fresh_cluster)
    disturbed = ElasticNetCV(cv=5, l1_ratio=[0.2, 0.9])
    killed = []
    killer = threading.Thread(target=_kill_every_worker_when,
                              args=(fresh_cluster, "_solve_gram_path_task", killed))
    killer.start()
    with caplog.at_level(logging.WARNING, logger="elasticnet_dist"):
        _fit(disturbed, path, fresh_cluster)
    killer.join()
    assert len(killed) == 2
    assert "solving the paths on the workers failed" in caplog.text
    assert disturbed.route_ == "gram" and disturbed.n_passes_ == 1
    np.testing.assert_array_equal(disturbed.coef_, undisturbed.coef_)
    np.testing.assert_array_equal(disturbed.mse_path_, undisturbed.mse_path_)
    assert (disturbed.alpha_, disturbed.l1_ratio_) == (undisturbed.alpha_, undisturbed.l1_ratio_)
