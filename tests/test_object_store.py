"""Inputs and outputs on an object store: a real S3 API server (moto's ``moto_server``,
a separate process on 127.0.0.1) reached through ``s3fs``, from the CLI and the
stage's Python API, on the local, Dask and Spark engines. Every test here drives
the server process, so the whole module is in the ``cluster`` tier (the unit tier
stays under three minutes; CI runs both)."""
from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

from conftest import run_cli
from elasticnet_dist.cli import EXIT_CONFIG, EXIT_ENGINE, EXIT_OK
from elasticnet_dist.datasets import make_wide_table, write_parquet
from elasticnet_dist.manifest import check_manifest

s3fs = pytest.importorskip("s3fs", reason="needs s3fs and moto: pip install -e '.[dev]'")
pytest.importorskip("moto", reason="needs moto[server]: pip install -e '.[dev]'")

pytestmark = pytest.mark.cluster

cli = functools.partial(run_cli, timeout=600)  # stage runs against the server

BUCKET = "stage"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server process, its bucket holding a 3-file table under ``t/``, the
    storage options to reach it, and a config file that carries them."""
    port = _free_port()
    server = shutil.which("moto_server", path=os.path.dirname(sys.executable)) \
        or shutil.which("moto_server")
    proc = subprocess.Popen([server, "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = "http://127.0.0.1:%d" % port
    options = {"key": "testing", "secret": "s3cr3t-value",
               "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
    fs = s3fs.S3FileSystem(**options)
    boto3 = pytest.importorskip("boto3")
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="s3cr3t-value")
    deadline = time.monotonic() + 30
    while True:
        try:
            client.create_bucket(Bucket=BUCKET)
            break
        except Exception:  # the server is not up yet (connection refused)
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("moto_server did not start on %s" % endpoint) from None
            time.sleep(0.3)
    root = tmp_path_factory.mktemp("s3")
    table = make_wide_table(900, 30, n_informative=5, seed=3)
    local = write_parquet(table, str(root / "t"), n_files=3)
    fs.put(local + "/", "%s/t/" % BUCKET, recursive=True)
    config = root / "s3.yaml"
    config.write_text(yaml.safe_dump({"input": {"storage_options": options}}))
    yield {"fs": fs, "options": options, "config": str(config), "local": local,
           "url": "s3://%s/t/" % BUCKET}
    proc.terminate()
    proc.wait(timeout=30)


FAST = ["--n-alphas", "20", "--l1-ratios", "0.5,1", "--cv", "3"]


def _read(s3, key):
    return json.loads(s3["fs"].cat_file("%s/%s" % (BUCKET, key)))


def _keys(s3, prefix):
    return sorted(os.path.basename(k) for k in s3["fs"].ls("%s/%s" % (BUCKET, prefix),
                                                           detail=False, refresh=True))


def _same_selection(a, b):
    assert [f["name"] for f in a["selected"]] == [f["name"] for f in b["selected"]]
    np.testing.assert_array_equal([f["coefficient"] for f in a["selected"]],
                                  [f["coefficient"] for f in b["selected"]])
    assert a["penalty"] == b["penalty"]


def test_select_reads_and_writes_on_the_store(s3, tmp_path):
    local = cli("select", "--input", s3["local"], "--label", "y", "--output", tmp_path / "ref",
                "--engine", "local", *FAST, "--no-report")
    assert local.returncode == EXIT_OK, local.stderr[-2000:]
    done = cli("select", "--config", s3["config"], "--input", s3["url"], "--label", "y",
               "--output", "s3://%s/out/" % BUCKET, "--engine", "local", *FAST)
    assert done.returncode == EXIT_OK, done.stderr[-2000:]
    assert done.stdout.strip() == "s3://%s/out/manifest.json" % BUCKET
    # the manifest and the whole report, and nothing else (no lock, probe or temporary)
    assert _keys(s3, "out") == ["cv_curve.png", "manifest.json", "path.png", "report.html",
                                "top_features.png"]
    manifest = _read(s3, "out/manifest.json")
    check_manifest(manifest)
    _same_selection(manifest, json.loads((tmp_path / "ref" / "manifest.json").read_text()))
    assert manifest["input"]["uri"] == s3["url"]
    text = json.dumps(manifest)
    assert "s3cr3t-value" not in text and "s3cr3t-value" not in done.stderr
    page = s3["fs"].cat_file("%s/out/report.html" % BUCKET).decode()
    assert manifest["run_id"] in page
    # validate checks the report beside a manifest on the store, as beside a local one
    from elasticnet_dist.errors import ManifestError
    from elasticnet_dist.stage import validate

    url = "s3://%s/out/manifest.json" % BUCKET
    assert validate(url, storage_options=s3["options"]).document["run_id"] == manifest["run_id"]
    s3["fs"].pipe("%s/out/report.html" % BUCKET,
                  page.replace(manifest["run_id"], "0" * 32).encode())
    with pytest.raises(ManifestError, match="report.html beside .* was written by run 0000"):
        validate(url, storage_options=s3["options"])
    # a rerun without the report replaces the manifest and removes the old report files
    again = cli("select", "--config", s3["config"], "--input", s3["url"], "--label", "y",
                "--output", "s3://%s/out" % BUCKET, "--engine", "local", *FAST, "--no-report",
                "--baseline", "s3://%s/out/manifest.json" % BUCKET, "--max-churn", "0")
    assert again.returncode == EXIT_OK, again.stderr[-2000:]
    assert _keys(s3, "out") == ["manifest.json"]
    for command in (["validate", "s3://%s/out/manifest.json" % BUCKET],
                    ["diff", "s3://%s/out/manifest.json" % BUCKET, tmp_path / "ref" /
                     "manifest.json"]):
        read = cli(*command, "--config", s3["config"])
        assert read.returncode == EXIT_OK, read.stderr[-2000:]
        assert ("ok" if command[0] == "validate" else "churn 0.000") in read.stdout
    rerun = _read(s3, "out/manifest.json")
    assert rerun["run_id"] != manifest["run_id"] and rerun["drift"]["churn"] == 0.0
    assert rerun["drift"]["baseline"]["run_id"] == manifest["run_id"]


def test_a_second_run_on_the_same_prefix_is_refused_by_the_lock_object(s3):
    s3["fs"].pipe("%s/held/.elasticnet_dist.lock" % BUCKET,
                  json.dumps({"pid": 4242, "host": "other-host", "started": "2026-12-04",
                              "command": "elasticnet-dist select"}).encode())
    done = cli("select", "--config", s3["config"], "--input", s3["url"], "--label", "y",
               "--output", "s3://%s/held" % BUCKET, "--engine", "local", *FAST)
    assert done.returncode == EXIT_ENGINE, done.stderr[-2000:]
    assert "in use by another run" in done.stderr and "pid 4242 on other-host" in done.stderr
    assert "remove the lock object" in done.stderr
    assert _keys(s3, "held") == [".elasticnet_dist.lock"]  # nothing written, lock kept


def test_bad_store_outputs_are_named_before_the_fit(s3):
    missing = cli("select", "--config", s3["config"], "--input", s3["url"], "--label", "y",
                  "--output", "s3://no-such-bucket/out", "--engine", "local", *FAST)
    assert missing.returncode == EXIT_ENGINE, missing.stderr[-2000:]
    assert "output.dir s3://no-such-bucket/out cannot be written" in missing.stderr
    assert "loaded" not in missing.stderr  # before the table was read
    inside = cli("select", "--config", s3["config"], "--input", s3["url"], "--label", "y",
                 "--output", "s3://%s/t/sub" % BUCKET, "--engine", "local", *FAST)
    assert inside.returncode == EXIT_CONFIG and "is inside input.path" in inside.stderr


def _reduced(s3, prefix):
    import pyarrow.parquet as pq

    files = [k for k in _keys(s3, prefix) if k.endswith(".parquet")]
    return {k: pq.read_table(s3["fs"].open("%s/%s/%s" % (BUCKET, prefix, k), "rb"))
            for k in files}


def test_apply_writes_the_reduced_table_on_the_store(s3, tmp_path):
    done = cli("select", "--config", s3["config"], "--input", s3["url"], "--label", "y",
               "--output", "s3://%s/sel" % BUCKET, "--engine", "local", *FAST, "--no-report")
    assert done.returncode == EXIT_OK, done.stderr[-2000:]
    manifest = "s3://%s/sel/manifest.json" % BUCKET
    for _ in range(2):  # the second run replaces the first's folder
        applied = cli("apply", "--config", s3["config"], "--manifest", manifest, "--input",
                      s3["url"], "--output", "s3://%s/reduced" % BUCKET, "--engine", "local")
        assert applied.returncode == EXIT_OK, applied.stderr[-2000:]
    assert _keys(s3, "reduced") == ["_elasticnet_dist_apply.json", "part-00000.parquet",
                                    "part-00001.parquet", "part-00002.parquet"]
    assert not [k for k in _keys(s3, "") if k.startswith(".")]  # no staging, no lock
    marker = _read(s3, "reduced/_elasticnet_dist_apply.json")
    columns = [c["name"] for c in _read(s3, "sel/manifest.json")["reduced_schema"]]
    assert marker["columns"] == columns and marker["rows"] == 900
    local = cli("apply", "--manifest", manifest, "--config",
                s3["config"], "--input", s3["local"], "--output", tmp_path / "reduced",
                "--engine", "local")
    assert local.returncode == EXIT_OK, local.stderr[-2000:]
    import pyarrow.parquet as pq

    for name, frame in _reduced(s3, "reduced").items():
        assert frame.column_names == columns
        assert frame.equals(pq.read_table(tmp_path / "reduced" / name))
    # a prefix that apply did not write is never replaced
    s3["fs"].pipe("%s/foreign/data.csv" % BUCKET, b"a,b\n")
    refused = cli("apply", "--config", s3["config"], "--manifest", manifest, "--input",
                  s3["url"], "--output", "s3://%s/foreign" % BUCKET, "--engine", "local")
    assert refused.returncode == EXIT_CONFIG and "did not write" in refused.stderr
    assert _keys(s3, "foreign") == ["data.csv"]


def test_a_checkpoint_on_the_store_resumes_to_the_same_numbers(s3, caplog):
    from elasticnet_dist import ElasticNetCV

    t = make_wide_table(500, 20, n_informative=4, seed=45, loss="logistic")
    path = write_parquet(t, os.path.join(os.path.dirname(s3["local"]), "logit"), n_files=2)
    s3["fs"].put(path + "/", "%s/logit/" % BUCKET, recursive=True)
    ckpt = "s3://%s/ckpt" % BUCKET
    kw = dict(l1_ratio=1.0, cv=3, alphas=8, loss="logistic", checkpoint_dir=ckpt)
    fit = dict(label="y", storage_options=s3["options"])
    ref = ElasticNetCV(**kw).fit("s3://%s/logit/" % BUCKET, **fit)
    passes = [k for k in _keys(s3, "ckpt") if k.startswith("pass-")]
    assert len(passes) == ref.n_passes_ and "fingerprint.json" in _keys(s3, "ckpt")
    for name in passes[3:]:  # the driver died after its third pass
        s3["fs"].rm("%s/ckpt/%s" % (BUCKET, name))
    with caplog.at_level("INFO", logger="elasticnet_dist"):
        again = ElasticNetCV(**kw).fit("s3://%s/logit/" % BUCKET, **fit)
    assert "3 data passes replayed" in caplog.text
    assert np.array_equal(again.scores_, ref.scores_, equal_nan=True)
    assert np.array_equal(again.coef_, ref.coef_) and again.n_passes_ == ref.n_passes_
    assert not [k for k in _keys(s3, "ckpt") if k.endswith(".tmp")]


@pytest.mark.parametrize("engine", ["dask", "spark"])
def test_the_stage_on_a_cluster_engine_reads_and_writes_on_the_store(s3, engine, request,
                                                                     tmp_path):
    from elasticnet_dist import config as cfg
    from elasticnet_dist.stage import select

    client = request.getfixturevalue("dask_client" if engine == "dask" else "spark")
    address = {"engine": {"name": "dask", "scheduler": client.scheduler.address}} \
        if engine == "dask" else {"engine": {"name": "spark", "master": "local[2]"}}
    layer = {"input": {"path": s3["url"], "label": "y", "storage_options": s3["options"]},
             "search": {"n_alphas": 20, "l1_ratios": [0.5, 1.0], "cv": 3},
             "output": {"dir": "s3://%s/on-%s" % (BUCKET, engine), "report": False},
             **address}
    target, document = select(cfg.resolve((), layer))
    assert target == "s3://%s/on-%s/manifest.json" % (BUCKET, engine)
    assert document["engine"]["name"] == engine
    stored = _read(s3, "on-%s/manifest.json" % engine)
    check_manifest(stored)
    local = dict(layer, input=dict(layer["input"], path=s3["local"], storage_options={}),
                 engine={"name": "local"}, output={"dir": str(tmp_path), "report": False})
    _same_selection(stored, select(cfg.resolve((), local))[1])
    # apply on the same engine: its workers write the reduced files to the store
    from elasticnet_dist.stage import apply

    rows = apply(target, s3["url"], "s3://%s/reduced-%s" % (BUCKET, engine),
                 cfg.resolve((), layer), storage_options=s3["options"])
    assert rows == 900
    frames = _reduced(s3, "reduced-%s" % engine)
    assert sorted(frames) == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    assert sum(f.num_rows for f in frames.values()) == 900
    assert all(f.column_names == [c["name"] for c in stored["reduced_schema"]]
               for f in frames.values())


def test_a_statistics_store_on_the_store_serves_a_rerun(s3, tmp_path, caplog):
    """Table and statistics store both on S3: the second run takes the first run's
    pieces from the store (keyed by their ETags) and gives a cold run's bits."""
    from elasticnet_dist import ElasticNetCV

    t = make_wide_table(800, 25, n_informative=4, seed=46)
    local = write_parquet(t, str(tmp_path / "grow"), n_files=4)
    for name in ("part-00000.parquet", "part-00001.parquet", "part-00002.parquet"):
        s3["fs"].put(os.path.join(local, name), "%s/grow/%s" % (BUCKET, name))
    kw = dict(l1_ratio=[0.5, 1.0], cv=3, alphas=20)
    fit = dict(label="y", storage_options=s3["options"])
    url, store = "s3://%s/grow/" % BUCKET, "s3://%s/stats" % BUCKET
    ElasticNetCV(**kw, stats_store=store).fit(url, **fit)
    s3["fs"].put(os.path.join(local, "part-00003.parquet"), "%s/grow/part-00003.parquet"
                 % BUCKET)
    with caplog.at_level("INFO", logger="elasticnet_dist"):
        again = ElasticNetCV(**kw, stats_store=store).fit(url, **fit)
    assert "3 of 4 pieces from the store, 1 decoded" in caplog.text
    cold = ElasticNetCV(**kw).fit(url, **fit)
    assert np.array_equal(again.coef_, cold.coef_) and again.alpha_ == cold.alpha_
    assert not [k for k in s3["fs"].find("%s/stats" % BUCKET) if k.endswith(".tmp")]
