"""Nothing lost, nothing leaked: the command line run as a hostile user would.

Every case runs ``elasticnet-dist`` in a subprocess (as a scheduler does) on real
files and a real engine, and checks the exit code, that the message names the
culprit, and what is on disk afterwards: inputs byte for byte, an earlier
manifest and its report, no temporary file, no secret.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from elasticnet_dist.cli import (EXIT_CONFIG, EXIT_ENGINE, EXIT_INPUT, EXIT_INTERRUPTED,
                                 EXIT_MANIFEST, EXIT_OK, EXIT_TERMINATED)
from elasticnet_dist.outputs import APPLY_MARKER, OutputLock, folder_lock
from test_stage import FAST, write_table

CLI = [sys.executable, "-m", "elasticnet_dist.cli"]
LOCAL = ["--engine", "local"]


def cli(*args, timeout=300, **options):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **options)


def snapshot(folder):
    """{relative path: sha256} of every file under ``folder`` (links not followed)."""
    out = {}
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return out


def leftovers(folder):
    """Temporary files, staging folders or locks of ours left in ``folder``."""
    return [n for n in os.listdir(folder) if n.startswith(".")]


def select(table, out, *extra, **options):
    return cli("select", "--input", table, "--label", "y", "--output", out, *LOCAL, *FAST,
               *extra, **options)


@pytest.fixture(scope="module")
def selected(tmp_path_factory):
    """A table (3 files) and the output folder of a successful select on it."""
    root = tmp_path_factory.mktemp("selected")
    table = str(root / "table")
    write_table(table)
    out = root / "out"
    done = select(table, out)
    assert done.returncode == EXIT_OK, done.stderr
    return root, str(table), out


# ---- data loss: apply and select outputs ---------------------------------------------------

@pytest.mark.parametrize("where", ["the input", "above the input", "inside the input",
                                   "the manifest's folder", "an existing file",
                                   "a foreign folder", "a link to a folder"])
def test_apply_never_replaces_what_it_did_not_write(selected, where, tmp_path):
    root, table, out = selected
    (root / "unrelated.txt").write_text("keep me")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    (tmp_path / "a-file").write_text("precious")
    os.symlink(tmp_path / "foreign", tmp_path / "link")
    output = {"the input": table, "above the input": root,
              "inside the input": os.path.join(table, "reduced"),
              "the manifest's folder": out, "an existing file": tmp_path / "a-file",
              "a foreign folder": tmp_path / "foreign", "a link to a folder": tmp_path / "link"}
    before = snapshot(root), snapshot(tmp_path)
    done = cli("apply", "--manifest", out / "manifest.json", "--input", table,
               "--output", output[where], *LOCAL)
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert "--output" in done.stderr and "Traceback" not in done.stderr
    assert str(output[where]).rstrip("/").split("/")[-1] in done.stderr
    assert (snapshot(root), snapshot(tmp_path)) == before
    assert not os.path.exists(os.path.join(table, "reduced"))


def test_apply_replaces_its_own_output_or_an_empty_folder(selected, tmp_path):
    root, table, out = selected
    target = tmp_path / "reduced"
    target.mkdir()  # empty: fine
    for _ in range(2):  # then its own output, marked
        done = cli("apply", "--manifest", out / "manifest.json", "--input", table,
                   "--output", target, *LOCAL)
        assert done.returncode == EXIT_OK, done.stderr
        marker = json.loads((target / APPLY_MARKER).read_text())
        assert marker["rows"] == sum(pq.read_metadata(target / f).num_rows
                                     for f in marker["files"])
        assert marker["manifest_run_id"] == json.loads((out / "manifest.json").read_text())[
            "run_id"]
    assert leftovers(tmp_path) == []
    # the marker is not data: reading the output back gives the rows once
    assert pq.read_table(target).num_rows == pq.read_table(table).num_rows == marker["rows"]


@pytest.mark.parametrize("where", ["equal", "inside"])
def test_select_output_inside_the_input_is_refused(selected, where, tmp_path):
    root, table, _ = selected
    before = snapshot(table)
    output = table if where == "equal" else os.path.join(table, "selection")
    done = select(table, output)
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert "output.dir" in done.stderr and "input.path" in done.stderr
    assert snapshot(table) == before


def test_a_report_url_output_is_refused_and_nothing_is_written_locally(selected, tmp_path):
    """report --output must be local (select's, apply's and checkpoints may be URLs:
    tests/test_object_store.py)."""
    root, table, out = selected
    url = "s3://bucket/run1/"
    done = cli("report", out / "manifest.json", "--output", url, cwd=tmp_path)
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert "s3://" in done.stderr and "must be a local path" in done.stderr
    assert not (tmp_path / "s3:").exists()


def test_a_file_url_output_is_the_local_path(selected, tmp_path):
    _, table, _ = selected
    done = select(table, "file://%s" % (tmp_path / "o"), "--no-report")
    assert done.returncode == EXIT_OK, done.stderr
    assert (tmp_path / "o" / "manifest.json").exists()


# ---- one run per output, atomic updates, signals ----------------------------------------------

@pytest.mark.cluster  # the integration tier: several processes, signals, locks
def test_a_second_run_on_a_held_output_fails_fast_naming_the_holder(selected, tmp_path):
    _, table, out = selected
    target = tmp_path / "held"
    target.mkdir()
    with folder_lock(str(target), "test"):
        t0 = time.perf_counter()
        done = select(table, target)
        assert done.returncode == EXIT_ENGINE, done.stderr
        assert time.perf_counter() - t0 < 60
        assert "in use by another run" in done.stderr and "pid %d" % os.getpid() in done.stderr
        assert not (target / "manifest.json").exists()
    reduced = tmp_path / "reduced"
    with OutputLock(str(tmp_path / (".reduced" + ".elasticnet_dist.lock")), "test"):
        done = cli("apply", "--manifest", out / "manifest.json", "--input", table,
                   "--output", reduced, *LOCAL)
        assert done.returncode == EXIT_ENGINE, done.stderr
        assert "pid %d" % os.getpid() in done.stderr
    assert not reduced.exists()
    assert select(table, target, "--no-report").returncode == EXIT_OK  # released
    assert leftovers(target) == []


@pytest.mark.cluster  # the integration tier: several processes, signals, locks
def test_concurrent_runs_never_pair_one_runs_manifest_with_anothers_report(selected, tmp_path):
    _, table, _ = selected
    target = tmp_path / "shared-output"
    for _ in range(2):
        runs = [subprocess.Popen([*CLI, "select", "--input", table, "--label", "y",
                                  "--output", str(target), *LOCAL, *FAST, "--l1-ratios", r],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for r in ("0.5,1", "0.9,1")]
        codes = sorted(run.wait(timeout=300) for run in runs)
        assert set(codes) <= {EXIT_OK, EXIT_ENGINE} and EXIT_OK in codes, codes
        check = cli("validate", target / "manifest.json")
        assert check.returncode == EXIT_OK, check.stderr
        assert leftovers(target) == []


def _interrupt_during_report(table, target, sig):
    """Start a select, send ``sig`` once the fit is done (the report is being drawn)."""
    run = subprocess.Popen([*CLI, "select", "--input", table, "--label", "y", "--output",
                            str(target), *LOCAL, *FAST], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    lines = []
    for line in run.stderr:
        lines.append(line)
        if " selected " in line:  # logged right before the outputs are written
            run.send_signal(sig)
            break
    code = run.wait(timeout=120)
    return code, "".join(lines) + run.stderr.read()


@pytest.mark.cluster  # the integration tier: several processes, signals, locks
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, EXIT_TERMINATED),
                                       (signal.SIGINT, EXIT_INTERRUPTED)])
def test_a_signal_while_the_report_is_drawn_keeps_the_earlier_outputs_whole(
        selected, tmp_path, sig, code):
    _, table, out = selected
    target = tmp_path / "out"
    first = select(table, target, "--l1-ratios", "1")
    assert first.returncode == EXIT_OK, first.stderr
    before = snapshot(target)
    got, err = _interrupt_during_report(table, target, sig)
    assert got in (code, EXIT_OK), err  # the signal may come after the commit
    if got == code:
        assert snapshot(target) == before
        assert ("terminated" if sig == signal.SIGTERM else "interrupted") in err
    assert leftovers(target) == []
    assert cli("validate", target / "manifest.json").returncode == EXIT_OK


@pytest.mark.cluster
def test_sigterm_during_apply_on_dask_leaves_no_staging_folder(selected, tmp_path):
    _, table, out = selected
    run = subprocess.Popen([*CLI, "apply", "--manifest", str(out / "manifest.json"), "--input",
                            table, "--output", str(tmp_path / "reduced"), "--engine", "dask"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not [n for n in os.listdir(tmp_path) if ".tmp" in n]:
        time.sleep(0.02)
    run.send_signal(signal.SIGTERM)
    err = run.communicate(timeout=120)[1]
    assert run.returncode in (EXIT_TERMINATED, EXIT_OK), err
    if run.returncode == EXIT_TERMINATED:
        assert "terminated (SIGTERM)" in err and "Traceback" not in err
    assert leftovers(tmp_path) == []


@pytest.mark.cluster  # the integration tier: several processes, signals, locks
def test_validate_rejects_a_report_from_another_run(selected, tmp_path):
    _, table, _ = selected
    a, b = tmp_path / "a", tmp_path / "b"
    for target in (a, b):
        assert select(table, target).returncode == EXIT_OK
    os.replace(b / "report.html", a / "report.html")  # a mix of two runs
    done = cli("validate", a / "manifest.json")
    assert done.returncode == EXIT_MANIFEST
    assert "report.html" in done.stderr and "do not belong together" in done.stderr
    rebuilt = cli("report", "--manifest", a / "manifest.json")
    assert rebuilt.returncode == EXIT_OK, rebuilt.stderr
    assert cli("validate", "--manifest", a / "manifest.json").returncode == EXIT_OK


# ---- secrets ------------------------------------------------------------------------------

SECRETS = {"aws": "AKIA-SECRET-7f3e9", "token": "tok-5up3r-s3cr3t", "mlflow": "hunter2-pw-9",
           "sas": "sig-0ddb4115"}


def _secret_config(tmp_path, mlflow):
    conf = tmp_path / "secrets.yaml"
    conf.write_text(
        "engine:\n  spark_conf:\n    spark.hadoop.fs.s3a.secret.key: %s\n"
        "    spark.hadoop.fs.s3a.session.token: %s\n    spark.executor.memory: 2g\n"
        "    spark.hadoop.fs.azure.sas.container.account: %s\n"
        "input:\n  storage_options:\n    key: %s\n"
        "output:\n  mlflow: %s\n" % (SECRETS["aws"], SECRETS["token"], SECRETS["sas"],
                                     SECRETS["aws"], mlflow))
    return conf


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.cluster  # the integration tier: several processes, signals, locks
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secrets_never_reach_manifest_report_or_logs(selected, tmp_path, fmt):
    pytest.importorskip("mlflow")
    _, table, _ = selected
    uri = "http://alice:%s@127.0.0.1:%d" % (SECRETS["mlflow"], _closed_port())
    conf = _secret_config(tmp_path, uri)
    t0 = time.perf_counter()
    done = select(table, tmp_path / "out", "--config", conf, "--log-format", fmt, "--debug")
    seconds = time.perf_counter() - t0
    assert done.returncode == EXIT_ENGINE, done.stderr  # the tracking server refuses
    assert seconds < 90, seconds  # retries bounded (MLflow's own: about 250 s)
    assert "at most 2 retries" in done.stderr
    written = "".join((tmp_path / "out" / n).read_text() for n in ("manifest.json",
                                                                    "report.html"))
    for where, text in (("the manifest or report", written), ("the logs", done.stderr)):
        for secret in SECRETS.values():
            assert secret not in text, (secret, where)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    conf_out = manifest["config"]
    assert conf_out["engine"]["spark_conf"]["spark.hadoop.fs.s3a.secret.key"] == "***"
    assert conf_out["engine"]["spark_conf"]["spark.executor.memory"] == "2g"
    assert conf_out["output"]["mlflow"].startswith("http://***@127.0.0.1")
    assert "127.0.0.1" in done.stderr  # the place is named, not the password


@pytest.mark.cluster  # the integration tier: several processes, signals, locks
def test_secrets_never_reach_mlflow_params_or_tags(selected, tmp_path):
    pytest.importorskip("mlflow")
    _, table, _ = selected
    conf = _secret_config(tmp_path, "local")
    done = select(table, tmp_path / "out", "--config", conf)
    assert done.returncode == EXIT_OK, done.stderr
    store = tmp_path / "out" / "mlruns"
    texts = [open(os.path.join(r, f), errors="replace").read() for r, _, fs in os.walk(store)
             for f in fs if "/params" in r or "/tags" in r]
    assert len(texts) > 20
    for secret in SECRETS.values():
        assert not any(secret in t for t in texts), secret


# ---- silent wrong answers ---------------------------------------------------------------------

def test_a_symlink_loop_in_the_input_is_refused_naming_the_link(selected, tmp_path):
    _, table, _ = selected
    looped = tmp_path / "looped"
    write_table(looped)
    os.symlink(looped, looped / "again")
    done = select(looped, tmp_path / "out")
    assert done.returncode == EXIT_INPUT, done.stderr
    assert "again" in done.stderr and "loop" in done.stderr


def test_a_dangling_part_is_an_error_not_a_skipped_file(tmp_path):
    table = tmp_path / "t"
    write_table(table)
    os.symlink(tmp_path / "gone.parquet", table / "part-9.parquet")
    done = select(table, tmp_path / "out")
    assert done.returncode == EXIT_INPUT, done.stderr
    assert "part-9.parquet" in done.stderr and "does not exist" in done.stderr


@pytest.mark.parametrize("engine", ["local", pytest.param("dask", marks=pytest.mark.cluster)])
def test_a_column_only_in_later_files_is_named_or_dropped_never_lost(tmp_path, engine):
    table = tmp_path / "t"
    write_table(table)
    part = pq.read_table(table / "part-2.parquet")
    part = part.append_column("late", pa.array(np.ones(part.num_rows)))
    part = part.append_column("late_text", pa.array(["z"] * part.num_rows))
    pq.write_table(part, table / "part-2.parquet")
    args = ["--engine", engine, "--no-report"]
    done = cli("select", "--input", table, "--label", "y", "--output", tmp_path / "o", *FAST,
               *args)
    assert done.returncode == EXIT_INPUT, done.stderr
    assert "'late'" in done.stderr and "part-0.parquet" in done.stderr
    done = cli("select", "--input", table, "--label", "y", "--output", tmp_path / "o", *FAST,
               *args, "--exclude", "late")  # the string column is a categorical feature
    assert done.returncode == EXIT_INPUT, done.stderr
    assert "'late_text'" in done.stderr and "part-0.parquet" in done.stderr
    done = cli("select", "--input", table, "--label", "y", "--output", tmp_path / "o", *FAST,
               *args, "--exclude", "late", "--max-levels", "0")
    assert done.returncode == EXIT_OK, done.stderr
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    reasons = {d["name"]: d["reason"] for d in manifest["dropped"]}
    assert reasons["late"] == "excluded_by_config" and reasons["late_text"] == "non_numeric"
    listed = [f["name"] for f in manifest["selected"]] + list(reasons) + ["y"]
    assert sorted(listed) == sorted(pq.read_schema(table / "part-2.parquet").names)


@pytest.mark.parametrize("flags, words", [
    (["--weight", "y"], "weight"), (["--keys", "y"], "keys"), (["--keys", "id", "id"], "'id'"),
    (["--features", "x01", "y"], "features"), (["--weight", "x01", "--keys", "x01"], "'x01'")])
def test_roles_must_not_share_a_column(selected, tmp_path, flags, words):
    _, table, _ = selected
    done = select(table, tmp_path / "o", *flags)
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert "two roles" in done.stderr and words in done.stderr
    assert not (tmp_path / "o" / "manifest.json").exists()


def test_a_fold_column_that_is_the_label_is_refused(selected, tmp_path):
    _, table, _ = selected
    conf = tmp_path / "c.yaml"
    conf.write_text("input:\n  fold_column: y\n")
    done = select(table, tmp_path / "o", "--config", conf)
    assert done.returncode == EXIT_CONFIG and "input.fold_column" in done.stderr


def _scaled_table(folder, **columns):
    rng = np.random.default_rng(4)
    n = 150
    cols = {"x%d" % j: rng.standard_normal(n) for j in range(4)}
    cols["y"] = cols["x0"] * 2 + rng.standard_normal(n)
    cols.update(columns)
    os.makedirs(folder, exist_ok=True)
    pq.write_table(pa.table(cols), os.path.join(folder, "part-0.parquet"))
    return folder


def test_features_of_extreme_magnitude_are_dropped_with_their_own_reason(tmp_path):
    rng = np.random.default_rng(5)
    table = _scaled_table(tmp_path / "t", tiny=rng.standard_normal(150) * 1e-300,
                          huge=rng.standard_normal(150) * 1e200,
                          ids=pa.array(2**62 + np.arange(150, dtype=np.int64) * 7919),
                          hashes=pa.array(np.arange(150, dtype=np.uint64) * 2**60,
                                          pa.uint64()))
    done = select(table, tmp_path / "o", "--no-report")
    assert done.returncode == EXIT_OK, done.stderr
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    reasons = {d["name"]: d["reason"] for d in manifest["dropped"]}
    assert reasons["tiny"] == reasons["huge"] == "extreme_scale"
    assert "'tiny'" in done.stderr and "'huge'" in done.stderr and "extreme_scale" in done.stderr
    assert "'ids'" in done.stderr and "'hashes'" in done.stderr and "2^53" in done.stderr
    assert "x0" in [f["name"] for f in manifest["selected"]]


@pytest.mark.parametrize("value", [1e300, 1e-300])
def test_a_label_of_extreme_magnitude_is_named(tmp_path, value):
    rng = np.random.default_rng(6)
    table = _scaled_table(tmp_path / "t")
    part = pq.read_table(table / "part-0.parquet")
    part = part.set_column(part.schema.get_field_index("y"), "y",
                           pa.array(rng.standard_normal(150) * value))
    pq.write_table(part, table / "part-0.parquet")
    done = select(table, tmp_path / "o")
    assert done.returncode == EXIT_INPUT, done.stderr
    assert "label column 'y'" in done.stderr and "Traceback" not in done.stderr


# ---- clean errors -------------------------------------------------------------------------

def test_all_constant_features_say_that_nothing_can_be_selected(tmp_path):
    table = _scaled_table(tmp_path / "t", x0=np.ones(150), x1=np.zeros(150),
                          x2=np.full(150, 3.0), x3=np.full(150, -1.0))
    done = select(table, tmp_path / "o")
    assert done.returncode == EXIT_INPUT, done.stderr
    assert "constant" in done.stderr and "nothing can be selected" in done.stderr


@pytest.mark.parametrize("text, words", [
    ("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
     "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
     "search:\n  l1_ratios: *h\n", "unknown section"),
    ("x: &a [1, 1, 1, 1, 1, 1, 1, 1]\ny: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
     "z: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nw: &d [*c, *c, *c, *c, *c, *c, *c, *c]\n",
     "unknown section"),
    ("search:\n  n_alphas: 1000000000\n", "search.n_alphas"),
    ("search:\n  cv: 1000000\n", "search.cv"),
    ("model:\n  max_iter: 10000000000\n", "model.max_iter"),
    ("search:\n  l1_ratios: [%s]\n" % ", ".join(["0.5"] * 500), "search.l1_ratios"),
])
def test_configuration_errors_are_short_and_named(selected, tmp_path, text, words):
    _, table, _ = selected
    conf = tmp_path / "bad.yaml"
    conf.write_text(text)
    done = select(table, tmp_path / "o", "--config", conf)
    assert done.returncode == EXIT_CONFIG, done.stderr[-2000:]
    assert words in done.stderr and len(done.stderr) < 2000, len(done.stderr)


def test_a_binary_config_file_is_named(selected, tmp_path):
    _, table, _ = selected
    conf = tmp_path / "model.bin"
    conf.write_bytes(bytes(range(256)) * 4)
    done = select(table, tmp_path / "o", "--config", conf)
    assert done.returncode == EXIT_CONFIG and "model.bin" in done.stderr
    assert "Traceback" not in done.stderr


def _small_file_limit():
    import resource

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a core dump
    resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))


@pytest.mark.cluster  # the integration tier: several processes, signals, locks
def test_a_full_disk_names_the_file_and_keeps_the_earlier_manifest(selected, tmp_path):
    _, table, _ = selected
    target = tmp_path / "o"
    assert select(table, target).returncode == EXIT_OK
    before = snapshot(target)
    done = select(table, target, "--l1-ratios", "1", preexec_fn=_small_file_limit)
    assert done.returncode == EXIT_ENGINE, done.stderr
    assert "cannot write %s" % target in done.stderr and "Traceback" not in done.stderr
    assert snapshot(target) == before and leftovers(target) == []


@pytest.mark.cluster
def test_apply_failing_on_dask_workers_is_one_line_without_worker_tracebacks(selected,
                                                                             tmp_path):
    _, table, out = selected
    broken = tmp_path / "broken"
    write_table(broken)
    path = broken / "part-1.parquet"
    chunk = pq.read_metadata(path).row_group(0)
    at = next(chunk.column(i).data_page_offset for i in range(chunk.num_columns)
              if chunk.column(i).path_in_schema == "y")
    data = bytearray(path.read_bytes())
    data[at:at + 64] = b"\xff" * 64  # the label's page header: the footer still reads
    path.write_bytes(bytes(data))
    done = cli("apply", "--manifest", out / "manifest.json", "--input", broken,
               "--output", tmp_path / "reduced", "--engine", "dask")
    assert done.returncode == EXIT_INPUT, done.stderr
    assert "part-1.parquet" in done.stderr
    assert "Traceback" not in done.stderr and "Compute Failed" not in done.stderr
    assert not (tmp_path / "reduced").exists() and leftovers(tmp_path) == []


def _broken_manifest(out, tmp_path, edit):
    doc = json.loads((out / "manifest.json").read_text())
    text = edit(doc)
    path = tmp_path / "manifest.json"
    path.write_text(text if isinstance(text, str) else json.dumps(doc))
    return path


@pytest.mark.parametrize("name, edit, words", [
    ("NaN", lambda d: json.dumps(d).replace('"intercept": ', '"intercept": NaN, "x": '),
     "NaN"),
    ("Infinity", lambda d: json.dumps(d).replace('"intercept": ', '"intercept": Infinity, '
                                                 '"x": '), "Infinity"),
    ("l1_ratio not in its grid", lambda d: d["penalty"].update(l1_ratio=0.123), "0.123"),
    ("grid arrays of different lengths", lambda d: d["selection"]["grid"][0]["mean"].pop(),
     "different lengths"),
    ("path of the wrong length",
     lambda d: d["selection"]["path"]["features"][0]["coefficients_standardized"].pop(),
     "coefficients for"),
    ("deeply nested", lambda d: '{"a": ' * 100000 + "1" + "}" * 100000, "nested"),
])
def test_inconsistent_manifests_fail_validate_and_report_cleanly(selected, tmp_path, name,
                                                                 edit, words):
    _, _, out = selected
    path = _broken_manifest(out, tmp_path, edit)
    for command in ("validate", "report"):
        done = cli(command, path)
        assert done.returncode == EXIT_MANIFEST, (command, done.stderr[-2000:])
        assert words in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr) < 3000


def test_a_corrupt_checkpoint_is_a_warning_and_a_fresh_start(tmp_path, caplog):
    from elasticnet_dist import ElasticNetCV

    rng = np.random.default_rng(2)
    X = rng.standard_normal((200, 12))
    y = (X[:, 0] + rng.standard_normal(200) > 0).astype(float)
    options = dict(loss="logistic", l1_ratio=1.0, alphas=8, cv=3, engine="local",
                   checkpoint_dir=str(tmp_path / "ck"))
    first = ElasticNetCV(**options).fit(X, y)
    passes = sorted((tmp_path / "ck").glob("pass-*.npz"))
    assert len(passes) > 3
    passes[2].write_bytes(b"not a zip file at all")
    caplog.set_level("WARNING", logger="elasticnet_dist")
    again = ElasticNetCV(**options).fit(X, y)
    assert "unreadable" in caplog.text and passes[2].name in caplog.text
    np.testing.assert_allclose(again.coef_, first.coef_, rtol=1e-12, atol=1e-14)


# ---- logs and the embedded Dask cluster -------------------------------------------------------

@pytest.mark.cluster
def test_dask_runs_log_every_phase_and_start_no_dashboard(selected, tmp_path):
    _, table, _ = selected
    with socket.socket() as busy:  # as when another program holds Dask's usual port
        try:
            busy.bind(("127.0.0.1", 8787))
            busy.listen()
        except OSError:  # another program holds it already: the same condition
            pass
        done = cli("select", "--input", table, "--label", "y", "--output", tmp_path / "o",
                   "--engine", "dask", "--no-report", *FAST)
    assert done.returncode == EXIT_OK, done.stderr
    for words in ("engine dask", "input ", "loaded ", "cross-validation", "manifest written"):
        assert words in done.stderr, (words, done.stderr)
    assert "8787" not in done.stderr and "already in use" not in done.stderr


@pytest.mark.cluster
def test_a_script_without_a_main_guard_is_told_what_to_do(tmp_path):
    script = tmp_path / "fit_at_top_level.py"
    script.write_text("import numpy as np\nfrom elasticnet_dist import ElasticNet\n"
                      "X = np.random.default_rng(0).standard_normal((40, 3))\n"
                      "ElasticNet(alpha=0.1, engine='dask').fit(X, X[:, 0])\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode != 0
    assert 'if __name__ == "__main__":' in done.stderr


# ---- memory guard -------------------------------------------------------------------------

def _address_space(limit):
    def apply():
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


def test_a_wide_table_is_refused_before_it_exhausts_memory(tmp_path):
    rng = np.random.default_rng(0)
    n, p = 60, 20_000
    X = rng.standard_normal((n, p))
    y = X[:, :5].sum(axis=1) + rng.standard_normal(n)
    table = tmp_path / "wide"
    table.mkdir()
    pq.write_table(pa.table({**{"f%05d" % j: X[:, j] for j in range(p)}, "y": y}),
                   table / "part-0.parquet")
    t0 = time.perf_counter()
    # a ridge fit keeps every feature in its working set: a 20,000 x 20,000 Hessian
    # (a coarse CV grid used to get there too; its steps are now cut)
    done = cli("select", "--input", table, "--label", "y", "--output", tmp_path / "o",
               "--engine", "local", "--alpha", "0.01", "--l1-ratio", "0", "--no-report",
               preexec_fn=_address_space(4 * 2**30))
    assert done.returncode == EXIT_ENGINE, done.stderr[-3000:]
    assert re.search(r"would build matrices over \d+ features", done.stderr), done.stderr
    assert "search.max_features" in done.stderr and "MemoryError" not in done.stderr
    assert time.perf_counter() - t0 < 120


def _children(pid, name):
    """PIDs of the processes below ``pid`` whose command is ``name`` (from /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                with open("/proc/%s/comm" % entry) as f:
                    parents[int(entry)] = (int(fields[1]), f.read().strip())
            except OSError:
                continue
    found, frontier = [], {pid}
    while frontier:
        frontier = {p for p, (ppid, _) in parents.items() if ppid in frontier}
        found += [p for p in frontier if parents[p][1] == name]
    return found


def test_a_lost_spark_gateway_is_named_wherever_py4j_reports_it(monkeypatch):
    protocol = pytest.importorskip("py4j.protocol")
    from elasticnet_dist.engines.spark_engine import raise_if_jvm_gone
    from elasticnet_dist.errors import EngineError

    # as py4j raises it when the JVM dies during rdd.collect's setCallSite: a plain
    # "error occurred while calling" raised while handling the network error
    try:
        try:
            raise protocol.Py4JNetworkError("Error while sending or receiving")
        except protocol.Py4JNetworkError:
            raise protocol.Py4JError("An error occurred while calling o27.setCallSite")  # noqa: B904 (as py4j does)
    except protocol.Py4JError as exc:
        with pytest.raises(EngineError, match="Spark's JVM .* died .*o27.setCallSite"):
            raise_if_jvm_gone(exc)
    # an error of the Java side's own (the JVM alive) is left as it is
    raise_if_jvm_gone(protocol.Py4JError("An error occurred while calling o31.collect"))
    # the same bare text, raised with no network error behind it, when the gateway no
    # longer answers (py4j's answer to a command it could not send): the JVM is gone
    from elasticnet_dist.engines import spark_engine
    with monkeypatch.context() as patch:
        patch.setattr(spark_engine, "_gateway_answers", lambda: False)
        with pytest.raises(EngineError, match="Spark's JVM .* died .*o27.setCallSite"):
            raise_if_jvm_gone(protocol.Py4JError("An error occurred while calling "
                                                 "o27.setCallSite"))
    # the command line names a call outside a pass the same way: py4j logs the reset
    # connection and raises the bare text of the call (CI saw o98.defaultParallelism)
    from elasticnet_dist.cli import EXIT_ENGINE, exit_code_of
    from elasticnet_dist.errors import jvm_gone_error

    bare = protocol.Py4JError("An error occurred while calling o98.defaultParallelism")
    with monkeypatch.context() as patch:
        patch.setattr(spark_engine, "_gateway_answers", lambda: False)
        lost = spark_engine.jvm_gone(bare)
    assert isinstance(lost, EngineError) and exit_code_of(lost) == EXIT_ENGINE
    assert "Spark's JVM" in str(lost) and "o98.defaultParallelism" in str(lost)
    assert spark_engine.jvm_gone(bare) is None  # no gateway in this process: not lost

    lost = jvm_gone_error(protocol.Py4JNetworkError("Error while sending or receiving"))
    assert isinstance(lost, EngineError) and exit_code_of(lost) == EXIT_ENGINE
    assert "Spark's JVM" in str(lost) and "Py4JNetworkError" in str(lost)
    assert jvm_gone_error(ValueError("no")) is None


@pytest.mark.cluster
def test_a_killed_spark_jvm_is_named_and_its_blocks_are_removed(tmp_path):
    pytest.importorskip("pyspark")
    rng = np.random.default_rng(8)
    X = rng.standard_normal((400, 30))
    y = (X[:, 0] - X[:, 1] + rng.standard_normal(400) > 0).astype(float)
    table = tmp_path / "t"
    table.mkdir()
    pq.write_table(pa.table({**{"x%02d" % j: X[:, j] for j in range(30)}, "y": y}),
                   table / "part-0.parquet")
    local = tmp_path / "local"
    local.mkdir()
    env = dict(os.environ, SPARK_LOCAL_DIRS=str(local))
    run = subprocess.Popen([*CLI, "select", "--input", str(table), "--label", "y", "--output",
                            str(tmp_path / "o"), "--loss", "logistic", "--engine", "spark",
                            "--master", "local[1]", "--n-alphas", "60", "--no-report"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = []
    for line in run.stderr:
        lines.append(line)
        if " loaded " in line:  # blocks cached on disk, passes under way
            for pid in _children(run.pid, "java"):
                os.kill(pid, signal.SIGKILL)
            break
    run.wait(timeout=180)
    err = "".join(lines) + run.stderr.read()
    assert run.returncode == EXIT_ENGINE, err[-3000:]
    assert "Spark's JVM" in err and "died" in err, err[-3000:]
    blocks = local / "elasticnet_dist-blocks"
    assert not blocks.exists() or os.listdir(blocks) == []
    assert not (tmp_path / "o" / "manifest.json").exists()
