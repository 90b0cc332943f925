"""The ready entry points of pipelines/: the Spark job through spark-submit (local
mode), the Dask job against a LocalCluster, and the Airflow DAG's commands."""
import ast
import json
import os
import pathlib
import shlex
import shutil
import subprocess
import sys

import pytest

from elasticnet_dist.cli import build_parser
from elasticnet_dist.manifest import check_manifest
from test_stage import write_table

ROOT = pathlib.Path(__file__).resolve().parents[1]
PIPELINES = ROOT / "pipelines"
FAST = ["--n-alphas", "20", "--l1-ratios", "1"]

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


def spark_submit():
    pytest.importorskip("pyspark", reason="needs the spark extra")
    found = shutil.which("spark-submit") or str(pathlib.Path(sys.executable).parent
                                                 / "spark-submit")
    if not os.path.exists(found):
        pytest.skip("spark-submit is not installed next to %s" % sys.executable)
    return found


def test_spark_job_through_spark_submit_local_mode(tmp_path):
    table = tmp_path / "table"
    write_table(table)
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    out = subprocess.run(
        [spark_submit(), "--master", "local[2]", "--conf", "spark.driver.host=127.0.0.1",
         "--conf", "spark.driver.bindAddress=127.0.0.1", "--conf", "spark.ui.enabled=false",
         str(PIPELINES / "spark_submit_job.py"), "--input", str(table), "--label", "y",
         "--keys", "id", "--output", str(tmp_path / "out"), *FAST],
        capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    doc = json.loads((tmp_path / "out" / "manifest.json").read_text())
    check_manifest(doc)
    # the session came from spark-submit: its master, not one the job chose
    assert doc["engine"] == {"name": "spark", "address": None, "workers": 2, "partitions": 3,
                             "bytes_cached": doc["engine"]["bytes_cached"]}
    assert {"x00", "x01", "x02", "x03"} <= {f["name"] for f in doc["selected"]}
    assert out.stdout.strip().endswith(str(tmp_path / "out" / "manifest.json"))


def test_spark_job_exit_code_passes_through(tmp_path):
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    out = subprocess.run(
        [spark_submit(), "--master", "local[1]", "--conf", "spark.driver.host=127.0.0.1",
         "--conf", "spark.driver.bindAddress=127.0.0.1", str(PIPELINES / "spark_submit_job.py"),
         "--input", str(tmp_path / "absent"), "--label", "y", "--output", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 3, out.stderr[-3000:]
    # spark-submit merges the Python driver's stderr into its own stdout
    assert "absent does not exist (exit 3)" in out.stdout


def test_dask_job_against_a_local_cluster(tmp_path, dask_client):
    table = tmp_path / "table"
    write_table(table)
    address = dask_client.scheduler.address
    env = dict(os.environ, DASK_SCHEDULER_ADDRESS=address)
    out = subprocess.run(
        [sys.executable, str(PIPELINES / "dask_job.py"), "--input", str(table), "--label", "y",
         "--output", str(tmp_path / "out"), "--log-format", "json", *FAST],
        capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    doc = json.loads((tmp_path / "out" / "manifest.json").read_text())
    check_manifest(doc)
    assert doc["engine"]["name"] == "dask" and doc["engine"]["address"] == address
    assert doc["engine"]["workers"] == 2
    env.pop("DASK_SCHEDULER_ADDRESS")
    missing = subprocess.run([sys.executable, str(PIPELINES / "dask_job.py"), "--input", "x"],
                             capture_output=True, text=True, timeout=120, env=env)
    assert missing.returncode == 2 and "DASK_SCHEDULER_ADDRESS" in missing.stderr


def test_airflow_dag_commands_are_valid_cli_calls():
    tree = ast.parse((PIPELINES / "airflow_dag.py").read_text())
    values = {}
    for node in tree.body:  # the module-level string constants, evaluated without Airflow
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = eval(compile(ast.Expression(node.value), "dag",
                                                          "eval"), {}, dict(values))
            except Exception:
                pass
    commands = [values[name] for name in ("SELECT", "VALIDATE", "APPLY")]
    parser = build_parser()
    parsed = []
    for command in commands:
        words = shlex.split(command.replace("{{ ds }}", "2026-11-28"))  # as Airflow renders
        assert words[0] == "elasticnet-dist"
        parsed.append(parser.parse_args(words[1:]))
    assert [a.command for a in parsed] == ["select", "validate", "apply"]
    assert parsed[0].output + "/manifest.json" == parsed[1].manifest == parsed[2].manifest
    for a in parsed[:1] + parsed[2:]:
        assert a.config == ["conf/dask-cluster.yaml"]
        assert (ROOT / a.config[0]).exists()
