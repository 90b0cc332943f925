"""The command line: the quick-start demo and --version, run as a user would."""
import importlib.util
import re
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

import elasticnet_dist
from elasticnet_dist import read_manifest


def run(*args):
    return subprocess.run([sys.executable, "-m", "elasticnet_dist.cli", *args],
                          capture_output=True, text=True, timeout=300)


def test_console_script_is_declared():
    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts.get("elasticnet-dist") == "elasticnet_dist.cli:main"


def test_version():
    out = run("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == "elasticnet-dist " + elasticnet_dist.__version__


@pytest.mark.cluster
def test_demo_finds_the_informative_features_on_the_embedded_dask_cluster(tmp_path):
    out = run("demo", "--rows", "1500", "--features", "300", "--informative", "10",
              "--workdir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert re.search(r"engine: dask, \d+ workers \(started in \S+ s\), 8 partitions, 1500 rows",
                     out.stdout), out.stdout
    assert len(list((tmp_path / "sample-table").glob("part-*.parquet"))) == 8
    m = re.search(r"selected (\d+) of 300 features; (\d+) of the 10 informative", out.stdout)
    assert m, out.stdout
    assert 10 <= int(m.group(1)) < 300 and int(m.group(2)) == 10
    assert "converged: true" in out.stdout and "5-fold CV over 3 l1_ratios" in out.stdout
    manifest = tmp_path / "selection" / "manifest.json"
    lines = out.stdout.strip().splitlines()
    assert "manifest: %s" % manifest in lines
    if importlib.util.find_spec("matplotlib"):
        assert lines[-1] == "report: %s" % (tmp_path / "selection" / "report.html")
    doc = read_manifest(manifest)
    assert len(doc.selected) == int(m.group(1))


def test_demo_logistic_on_the_local_engine(tmp_path):
    out = run("demo", "--rows", "600", "--features", "60", "--loss", "logistic",
              "--engine", "local", "--workdir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "loss=logistic" in out.stdout and "selected" in out.stdout
    assert re.search(r"engine: local, 1 worker \(started in \S+ s\), 8 partitions",
                     out.stdout), out.stdout


def test_no_command_prints_help_and_fails():
    out = run()
    assert out.returncode == 2 and "demo" in out.stdout


def test_bad_option_value_is_an_error():
    out = run("demo", "--loss", "hinge")
    assert out.returncode == 2 and "hinge" in out.stderr


def test_help_shows_examples_and_exit_codes():
    out = run("--help")
    assert out.returncode == 0
    for words in ("select", "apply", "validate", "demo", "exit codes:",
                  "3  bad input data", "elasticnet-dist select --input"):
        assert words in out.stdout
    for command in ("select", "apply", "validate", "demo"):
        sub = run(command, "--help")
        assert sub.returncode == 0 and "examples:" in sub.stdout
