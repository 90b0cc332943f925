"""Fits through real cluster processes started as an operator would start them:
a Spark standalone master and worker from the pyspark package, and
``dask scheduler`` / ``dask worker``. Only the address changes."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from elasticnet_dist import ElasticNet
from elasticnet_dist.datasets import make_wide_table, write_parquet

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

FIT_SCRIPT = """
import json, sys
from elasticnet_dist import ElasticNet
est = ElasticNet(alpha=0.03, l1_ratio=0.5, tol=1e-10, engine=sys.argv[1], cluster=sys.argv[2])
est.fit(sys.argv[3], label="y")
print(json.dumps({"coef": est.coef_.tolist(), "report": {k: v for k, v in est.fit_report_.items()
                                                         if k != "timings"}}))
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, seconds=90):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("process exited with %s" % proc.returncode)
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise TimeoutError("nothing listens on port %d" % port)


def stop(*procs):
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    t = make_wide_table(640, 40, n_informative=8, seed=11)
    path = write_parquet(t, str(tmp_path_factory.mktemp("clusters") / "t"), n_files=5)
    ref = ElasticNet(alpha=0.03, l1_ratio=0.5, tol=1e-10).fit(t.X, t.y)
    return path, ref


def run_fit(engine, address, path, env=None):
    out = subprocess.run([sys.executable, "-c", FIT_SCRIPT, engine, address, path],
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_spark_standalone_master_and_worker(table, tmp_path):
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("needs Java 17 for Spark")
    from pyspark.find_spark_home import _find_spark_home

    spark_class = os.path.join(_find_spark_home(), "bin", "spark-class")
    port = free_port()
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", SPARK_LOG_DIR=str(tmp_path),
               SPARK_WORKER_DIR=str(tmp_path / "work"), PYSPARK_PYTHON=sys.executable,
               SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false")
    log = open(tmp_path / "cluster.log", "w")
    master = subprocess.Popen(
        ["bash", spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
         "--port", str(port), "--webui-port", str(free_port())],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    worker = None
    try:
        wait_for_port(port, master)
        worker = subprocess.Popen(
            ["bash", spark_class, "org.apache.spark.deploy.worker.Worker",
             "spark://127.0.0.1:%d" % port, "--host", "127.0.0.1", "--cores", "2",
             "--memory", "2g", "--webui-port", str(free_port())],
            env=env, stdout=log, stderr=subprocess.STDOUT)
        path, ref = table
        result = run_fit("spark", "spark://127.0.0.1:%d" % port, path, env=env)
    finally:
        stop(*[p for p in (worker, master) if p is not None])
        log.close()
    np.testing.assert_allclose(result["coef"], ref.coef_, rtol=1e-9,
                               atol=1e-9 * np.abs(ref.coef_).max())
    assert result["report"]["engine"] == "spark" and result["report"]["partitions"] == 5


def test_dask_scheduler_and_worker_processes(table, tmp_path):
    pytest.importorskip("distributed")
    dask_cli = os.path.join(os.path.dirname(sys.executable), "dask")
    port = free_port()
    scheduler = subprocess.Popen(
        [dask_cli, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = []
    try:
        wait_for_port(port, scheduler)
        address = "tcp://127.0.0.1:%d" % port
        workers = [subprocess.Popen(
            [dask_cli, "worker", address, "--host", "127.0.0.1", "--nthreads", "1",
             "--no-dashboard", "--local-directory", str(tmp_path / ("w%d" % i))],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(2)]
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        path, ref = table
        result = run_fit("dask", address, path)
    finally:
        stop(*workers, scheduler)
    np.testing.assert_allclose(result["coef"], ref.coef_, rtol=1e-9,
                               atol=1e-9 * np.abs(ref.coef_).max())
    assert result["report"]["engine"] == "dask" and result["report"]["workers"] == 2
