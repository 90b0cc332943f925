"""The pipeline stage end to end: ``select``, ``apply``, ``validate`` through the CLI's
``main`` on the local engine, a Dask LocalCluster and Spark local[2]; the manifest,
its schema, atomic writes, exit codes, logs and progress."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from elasticnet_dist import ElasticNet, ElasticNetCV, read_manifest
from elasticnet_dist.cli import (EXIT_CONFIG, EXIT_ENGINE, EXIT_INPUT, EXIT_INTERNAL,
                                 EXIT_MANIFEST, EXIT_NOT_CONVERGED, EXIT_OK, main)
from elasticnet_dist.errors import ManifestError, MissingColumnError
from elasticnet_dist.manifest import check_manifest, without_volatile
from elasticnet_dist.progress import TerminalProgress, observing

N_ROWS, N_FEATURES = 900, 40
FAST = ["--n-alphas", "30", "--l1-ratios", "0.5,1"]  # small grids keep the suite quick


def write_table(folder, n=N_ROWS, p=N_FEATURES, seed=1, n_files=3, nan_at=None):
    """id (string key), x00..x39, const, note (string), y; 4 informative features."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    y = X[:, :4] @ np.array([2.0, -1.5, 1.0, 0.8]) + rng.standard_normal(n)
    if nan_at is not None:
        X[nan_at] = np.nan
    cols = {"id": pa.array(["r%05d" % i for i in range(n)])}
    cols.update({"x%02d" % j: X[:, j] for j in range(p)})
    cols.update(const=np.ones(n), note=pa.array(["a"] * n), y=y)
    table = pa.table(cols)
    os.makedirs(folder, exist_ok=True)
    step = -(-n // n_files)
    for i in range(n_files):
        pq.write_table(table.slice(i * step, step), os.path.join(folder, "part-%d.parquet" % i))
    return table


@pytest.fixture(scope="module")
def table_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stage") / "table"
    write_table(folder)
    return str(folder)


def select(table_dir, out, *extra):
    return main(["select", "--input", table_dir, "--label", "y", "--keys", "id",
                 "--output", str(out), "--engine", "local", *FAST, *extra])


def load(out):
    with open(os.path.join(out, "manifest.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def local_output(table_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("local-select")
    assert select(table_dir, out) == EXIT_OK
    return out


@pytest.fixture(scope="module")
def local_manifest(local_output):
    return load(local_output)


# ---- select ----------------------------------------------------------------------------

def test_select_manifest_validates_and_equals_the_estimator(table_dir, local_manifest):
    doc = local_manifest
    check_manifest(doc)
    est = ElasticNetCV(l1_ratio=[0.5, 1.0], alphas=30, selection="1se").fit(
        table_dir, label="y", keys="id")
    support = set(est.feature_names_in_[est.coef_ != 0])
    assert {f["name"] for f in doc["selected"]} == support
    assert {"x00", "x01", "x02", "x03"} <= support
    coef = dict(zip(est.feature_names_in_, est.coef_, strict=True))
    for f in doc["selected"]:
        assert f["coefficient"] == pytest.approx(coef[f["name"]], rel=1e-12)
    assert doc["penalty"]["alpha"] == pytest.approx(est.alpha_, rel=1e-12)
    assert doc["penalty"]["l1_ratio"] == est.l1_ratio_
    assert doc["intercept"] == pytest.approx(est.intercept_, rel=1e-12)
    # ranks follow |standardized coefficient|
    mags = [abs(f["coefficient_standardized"]) for f in doc["selected"]]
    assert mags == sorted(mags, reverse=True)
    assert [f["rank"] for f in doc["selected"]] == list(range(1, len(mags) + 1))


def test_every_input_column_is_selected_dropped_or_passed_through(local_manifest):
    doc = local_manifest
    names = pq.read_schema(doc["input"]["files"][0]["path"]).names
    selected = [f["name"] for f in doc["selected"]]
    dropped = {f["name"]: f["reason"] for f in doc["dropped"]}
    assert sorted(selected + list(dropped) + ["y", "id"]) == sorted(names)
    # a string column of one level is a categorical feature, and constant
    assert dropped["const"] == "constant" and dropped["note"] == "constant"
    assert {r for n, r in dropped.items() if n.startswith("x")} == {"zero_coefficient"}
    # reduced schema: selected features in input order, then the label and the keys
    reduced = doc["reduced_schema"]
    features = [c["name"] for c in reduced if c["role"] == "feature"]
    assert features == [n for n in names if n in set(selected)]
    assert [(c["name"], c["role"], c["type"]) for c in reduced[-2:]] == [
        ("y", "label", "double"), ("id", "key", "string")]
    inp = doc["input"]
    assert inp["rows_used"] == N_ROWS and inp["n_columns"] == len(names)
    assert [f["rows"] for f in inp["files"]] == [300, 300, 300]
    assert doc["selection"]["method"] == "cross_validation"
    assert doc["selection"]["fold_assignment"] == "keys"
    assert sum(doc["selection"]["fold_rows"]) == N_ROWS
    assert len(doc["selection"]["grid"]) == 2 and len(doc["selection"]["grid"][0]["alphas"]) == 30
    assert doc["solver"]["converged"] and doc["solver"]["data_passes"] == 1


def test_rerun_gives_the_same_manifest(table_dir, local_output, local_manifest):
    assert select(table_dir, local_output) == EXIT_OK
    again = load(local_output)
    assert without_volatile(again) == without_volatile(local_manifest)
    assert set(local_manifest) - set(without_volatile(local_manifest)) == {"created_at", "run_id"}


@pytest.mark.parametrize("engine", ["dask", "spark"])
def test_select_on_cluster_engines(engine, table_dir, local_manifest, tmp_path, request):
    if engine == "dask":
        client = request.getfixturevalue("dask_client")
        flags = ["--scheduler", client.scheduler.address]
    else:
        request.getfixturevalue("spark")
        flags = ["--engine", "spark"]  # the active session
    run = lambda out: main(["select", "--input", table_dir, "--label", "y", "--keys", "id",
                            "--output", str(out), *FAST, *flags])
    assert run(tmp_path) == EXIT_OK
    first = load(tmp_path)
    assert run(tmp_path) == EXIT_OK
    second = load(tmp_path)
    check_manifest(first)
    assert first["engine"]["name"] == engine and first["engine"]["workers"] == 2
    # measured, not the 0.0 of an engine handed in (attaching to Spark's active session
    # can take under a millisecond, so no lower bound beyond zero)
    assert first["solver"]["timings"]["engine_start"] > 0
    assert without_volatile(first) == without_volatile(second)  # reruns on this engine
    assert [f["name"] for f in first["selected"]] == [f["name"]
                                                       for f in local_manifest["selected"]]
    ours = {f["name"]: f["coefficient"] for f in first["selected"]}
    for f in local_manifest["selected"]:
        assert ours[f["name"]] == pytest.approx(f["coefficient"], rel=1e-9, abs=1e-12)


def test_fixed_alpha_skips_cross_validation(table_dir, tmp_path):
    assert select(table_dir, tmp_path, "--alpha", "0.1", "--l1-ratio", "0.9") == EXIT_OK
    doc = load(tmp_path)
    assert doc["selection"] == {"method": "fixed"}
    est = ElasticNet(alpha=0.1, l1_ratio=0.9, max_iter=100).fit(table_dir, label="y", keys="id")
    assert [f["name"] for f in sorted(doc["selected"], key=lambda f: f["name"])] == \
        list(est.feature_names_in_[est.coef_ != 0])
    assert doc["penalty"]["alpha"] == 0.1 and doc["penalty"]["l1_ratio"] == 0.9
    assert doc["solver"]["iterations"] >= 1


def test_flags_override_config_files_which_override_defaults(table_dir, tmp_path):
    conf = tmp_path / "c.yaml"
    conf.write_text("search:\n  cv: 3\n  selection: min\n  l1_ratios: [0.7]\n"
                    "input:\n  exclude: ['x3*']\n")
    out = tmp_path / "out"
    assert main(["select", "--config", str(conf), "--input", table_dir, "--label", "y",
                 "--output", str(out), "--engine", "local", "--cv", "4",
                 "--n-alphas", "20"]) == EXIT_OK
    doc = load(out)
    search = doc["config"]["search"]
    assert (search["cv"], search["selection"], search["l1_ratios"]) == (4, "min", [0.7])
    assert search["eps"] is None and search["fold_seed"] == 0  # defaults
    assert doc["selection"]["folds"] == 4 and doc["selection"]["rule"] == "min"
    assert doc["selection"]["fold_assignment"] == "position"
    dropped = {f["name"]: f["reason"] for f in doc["dropped"]}
    assert all(dropped["x3%d" % j] == "excluded_by_config" for j in range(10))
    assert "id" in dropped  # no --keys: a string column like any other


def test_storage_options_never_reach_the_manifest(table_dir, tmp_path):
    conf = tmp_path / "c.yaml"
    conf.write_text("input:\n  storage_options:\n    secret: hunter2\n")
    assert select(table_dir, tmp_path / "o", "--config", str(conf)) == EXIT_OK
    text = (tmp_path / "o" / "manifest.json").read_text()
    assert "hunter2" not in text
    assert load(tmp_path / "o")["config"]["input"]["storage_options"] == {"secret": "***"}


# ---- apply and validate -------------------------------------------------------------------

@pytest.mark.parametrize("engine", ["local", "dask", "spark"])
def test_apply_writes_exactly_the_reduced_schema(engine, table_dir, local_manifest, tmp_path,
                                                 request):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(local_manifest))
    flags = ["--engine", engine]
    if engine == "dask":
        flags = ["--scheduler", request.getfixturevalue("dask_client").scheduler.address]
    elif engine == "spark":
        request.getfixturevalue("spark")
    out = tmp_path / "reduced"
    for _ in range(2):  # the second replaces the first's output whole (it is marked)
        assert main(["apply", "--manifest", str(manifest), "--input", table_dir, "--output",
                     str(out), *flags]) == EXIT_OK
        (out / "stale.parquet").write_text("from an earlier run")
    os.unlink(out / "stale.parquet")
    result = pq.read_table(out)
    m = read_manifest(manifest)
    assert [(f.name, str(f.type)) for f in result.schema] == m.reduced_schema
    # one file per input file, named after it
    assert sorted(os.listdir(out)) == ["_elasticnet_dist_apply.json", "part-0.parquet",
                                       "part-1.parquet", "part-2.parquet"]
    source = pq.read_table(table_dir)
    assert result.num_rows == source.num_rows
    assert result.equals(source.select(m.columns))
    assert main(["validate", str(manifest), "--input", str(out)]) == EXIT_OK


def test_validate_catches_a_lost_column_and_a_changed_type(table_dir, local_manifest, tmp_path,
                                                           capsys):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(local_manifest))
    assert main(["validate", str(manifest), "--input", table_dir]) == EXIT_OK
    first = local_manifest["selected"][0]["name"]
    table = pq.read_table(table_dir)
    lost = tmp_path / "lost"
    lost.mkdir()
    pq.write_table(table.drop_columns([first]), lost / "part.parquet")
    assert main(["validate", str(manifest), "--input", str(lost)]) == EXIT_INPUT
    assert repr(first) in capsys.readouterr().err
    changed = tmp_path / "changed"
    changed.mkdir()
    i = table.schema.get_field_index(first)
    pq.write_table(table.set_column(i, first, table[first].cast(pa.float32())),
                   changed / "part.parquet")
    assert main(["validate", str(manifest), "--input", str(changed)]) == EXIT_INPUT
    assert "%r is float, the manifest says double" % first in capsys.readouterr().err
    assert main(["apply", "--manifest", str(manifest), "--input", str(changed), "--output",
                 str(tmp_path / "never"), "--engine", "local"]) == EXIT_INPUT
    assert not (tmp_path / "never").exists()


def test_validate_rejects_a_broken_manifest(local_manifest, tmp_path):
    bad = dict(local_manifest)
    del bad["selected"]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(bad))
    assert main(["validate", str(path)]) == EXIT_MANIFEST
    path.write_text("{not json")
    assert main(["validate", str(path)]) == EXIT_MANIFEST
    twice = json.loads(json.dumps(local_manifest))
    twice["dropped"].append({"name": twice["selected"][0]["name"], "reason": "zero_coefficient"})
    with pytest.raises(ManifestError, match="more than once"):
        check_manifest(twice)


# ---- the downstream helper ------------------------------------------------------------------

def test_read_manifest_projects_pandas_arrow_dask_and_spark(table_dir, local_manifest, tmp_path,
                                                            dask_client, spark):
    import dask.dataframe as dd
    import pandas as pd

    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(local_manifest))
    m = read_manifest(path)
    assert m.selected == [f["name"] for f in local_manifest["selected"]]
    assert m.columns[-2:] == ["y", "id"] and m.label == "y"
    assert set(m.coefficients) == set(m.selected)
    frame = pd.read_parquet(table_dir)
    assert list(m.project(frame).columns) == m.columns
    assert m.project(pq.read_table(table_dir)).schema.names == m.columns
    assert list(m.project(dd.read_parquet(table_dir)).compute().columns) == m.columns
    assert m.project(spark.read.parquet(table_dir)).columns == m.columns
    with pytest.raises(MissingColumnError, match=m.selected[0]):
        m.project(frame.drop(columns=[m.selected[0]]))


# ---- failures: exit codes, no partial output ------------------------------------------------

def test_exit_codes_and_the_earlier_manifest_stays_intact(table_dir, tmp_path, capsys):
    assert select(table_dir, tmp_path) == EXIT_OK
    before = (tmp_path / "manifest.json").read_bytes()
    bad_conf = tmp_path / "bad.yaml"
    bad_conf.write_text("search:\n  folds: 5\n")
    nan_dir = tmp_path / "nan"
    write_table(nan_dir, nan_at=(5, 7))
    cases = [
        (EXIT_CONFIG, ["--config", str(bad_conf)], "search.folds"),
        (EXIT_CONFIG, ["--cv", "1"], "search.cv"),
        (EXIT_INPUT, ["--features", "nope"], "nope"),
        (EXIT_NOT_CONVERGED, ["--alpha", "0.001", "--max-iter", "1", "--tol", "1e-12",
                              "--on-not-converged", "fail"], "did not converge"),
    ]
    capsys.readouterr()
    for code, flags, words in cases:
        assert select(table_dir, tmp_path, *flags) == code, flags
        assert words in capsys.readouterr().err
    assert main(["select", "--input", str(nan_dir), "--label", "y", "--output", str(tmp_path),
                 "--engine", "local"]) == EXIT_INPUT
    assert "x07" in capsys.readouterr().err
    assert main(["select", "--input", table_dir, "--label", "why", "--output", str(tmp_path),
                 "--engine", "local"]) == EXIT_INPUT
    assert "'why'" in capsys.readouterr().err
    assert (tmp_path / "manifest.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_not_converged_warns_by_default(table_dir, tmp_path, capsys):
    assert select(table_dir, tmp_path, "--alpha", "0.001", "--max-iter", "1",
                  "--tol", "1e-12") == EXIT_OK
    assert load(tmp_path)["solver"]["converged"] is False
    assert "did not converge" in capsys.readouterr().err


def test_unreachable_scheduler_is_an_engine_failure(table_dir, tmp_path, capsys):
    conf = tmp_path / "c.yaml"
    conf.write_text("engine:\n  connect_timeout: 2\n")
    assert main(["select", "--input", table_dir, "--label", "y", "--output", str(tmp_path),
                 "--scheduler", "tcp://127.0.0.1:9", "--config", str(conf)]) == EXIT_ENGINE
    assert "cannot reach the dask engine at tcp://127.0.0.1:9" in capsys.readouterr().err
    assert not (tmp_path / "manifest.json").exists()


def test_an_unexpected_error_is_internal_with_its_traceback(table_dir, tmp_path, monkeypatch,
                                                            capsys):
    import elasticnet_dist.stage as stage

    def broken(config):
        raise RuntimeError("a bug")
    monkeypatch.setattr(stage, "select", broken)
    assert select(table_dir, tmp_path) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "RuntimeError: a bug" in err and "Traceback" in err


def cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "elasticnet_dist.cli", *args],
                          capture_output=True, text=True, timeout=300, **kw)


def test_expected_errors_print_one_line_without_traceback(table_dir, tmp_path):
    out = cli("select", "--input", table_dir, "--label", "nope", "--output", str(tmp_path),
              "--engine", "local")
    assert out.returncode == EXIT_INPUT
    assert "Traceback" not in out.stderr and "'nope'" in out.stderr
    debug = cli("select", "--input", table_dir, "--label", "nope", "--output", str(tmp_path),
                "--engine", "local", "--debug")
    assert debug.returncode == EXIT_INPUT and "Traceback" in debug.stderr


def test_json_logs_and_no_progress_off_a_terminal(table_dir, tmp_path):
    out = cli("select", "--input", table_dir, "--label", "y", "--output", str(tmp_path),
              "--engine", "local", "--log-format", "json", *FAST)
    assert out.returncode == EXIT_OK, out.stderr
    records = [json.loads(line) for line in out.stderr.splitlines() if line.strip()]
    assert records and {"time", "level", "logger", "message"} <= set(records[0])
    assert any("manifest written" in r["message"] for r in records)
    assert "\r" not in out.stderr
    assert out.stdout.strip() == str(tmp_path / "manifest.json")
    shown = subprocess.run([sys.executable, "-m", "elasticnet_dist.cli", "select", "--input",
                            table_dir, "--label", "y", "--output", str(tmp_path), "--engine",
                            "local", "--progress", "always", *FAST], capture_output=True,
                           timeout=300)
    assert shown.returncode == EXIT_OK
    assert b"\rdata passes: 1 (last" in shown.stderr and b"path points: 360/360" in shown.stderr


def test_terminal_progress_counts_passes_and_points():
    import io

    from elasticnet_dist import enet_path

    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 30))
    y = X[:, 0] + rng.standard_normal(200)
    with observing(TerminalProgress(stream, rate=1e9)) as bar:
        ElasticNetCV(alphas=10, cv=3).fit(X, y)
        assert (bar.points, bar.total) == (40, 40) and bar.passes >= 1
        enet_path(X, y, n_alphas=5)
    text = stream.getvalue()
    assert "path points: 40/40" in text and text.endswith("\r")


KILL_SCRIPT = textwrap.dedent("""
    import os, sys, time
    from elasticnet_dist import manifest
    real_fsync = os.fsync
    def slow_fsync(fd):
        print("writing", flush=True)
        time.sleep(60)
    os.fsync = slow_fsync
    manifest.write_atomic(sys.argv[1], '{"new": true}')
""")


def test_manifest_keeps_the_mode_of_the_file_it_replaces(tmp_path):
    from elasticnet_dist.manifest import write_atomic

    target = tmp_path / "manifest.json"
    write_atomic(target, "{}")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    target.chmod(0o640)
    write_atomic(target, '{"again": 1}')
    assert target.stat().st_mode & 0o777 == 0o640 and target.read_text() == '{"again": 1}'


def test_a_run_killed_while_writing_leaves_the_earlier_manifest(tmp_path):
    target = tmp_path / "manifest.json"
    target.write_text('{"old": true}')
    before = target.read_bytes()
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(target)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"  # the new file is half way
    temps = [p for p in tmp_path.iterdir() if p.name != "manifest.json"]
    assert temps and temps[0].read_text() == '{"new": true}'
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert target.read_bytes() == before
    # the stale temporary file is hidden (a dot name) and never read as a manifest
    assert all(p.name.startswith(".manifest.json.") for p in temps)


def test_the_stage_stops_paths_early_unless_configured_off():
    from elasticnet_dist import config as cfg
    from elasticnet_dist.stage import make_estimator

    config = cfg.defaults()
    assert make_estimator(config, engine="local").early_stop == 10
    config["search"]["early_stop"] = None
    assert make_estimator(config, engine="local").early_stop is None
    assert ElasticNetCV().early_stop is None  # the estimators walk the whole grid


def test_the_manifest_says_where_early_stopping_ended_the_paths(tmp_path):
    from elasticnet_dist.datasets import make_wide_table, write_parquet

    t = make_wide_table(150, 400, n_informative=5, seed=12, loss="logistic")
    path = write_parquet(t, str(tmp_path / "t"), n_files=2)
    out = tmp_path / "out"
    assert main(["select", "--input", path, "--label", "y", "--loss", "logistic",
                 "--output", str(out), "--engine", "local", "--n-alphas", "60",
                 "--l1-ratios", "0.5,1"]) == EXIT_OK
    doc = load(out)
    check_manifest(doc)
    assert doc["config"]["search"]["early_stop"] == 10
    grid = doc["selection"]["grid"]
    stops = [entry["stopped_early"] for entry in grid]
    assert any(stop is not None for stop in stops)
    for entry, stop in zip(grid, stops, strict=True):
        if stop is not None:  # nothing solved or scored after it
            assert entry["n_features"][stop] is not None
            assert all(k is None for k in entry["n_features"][stop + 1:])
            assert all(m is None for m in entry["mean"][stop + 1:])
    old = json.loads(json.dumps(doc))  # a manifest of 1.4 (no stopped_early) still validates
    old["schema_version"] = "1.4"
    for entry in old["selection"]["grid"]:
        del entry["stopped_early"]
    check_manifest(old)
    broken = json.loads(json.dumps(doc))
    broken["selection"]["grid"][0]["stopped_early"] = -1
    with pytest.raises(ManifestError):
        check_manifest(broken)
