"""Column names with spaces, dots, quotes, backticks, brackets, glob characters and
non-ASCII letters: select on every engine keeps them unchanged in the manifest,
apply and validate find them, and nothing is evaluated as code or SQL."""
from __future__ import annotations

import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from elasticnet_dist.cli import EXIT_OK, main
from elasticnet_dist.manifest import check_manifest, without_volatile

HOSTILE = ["a b", "a.b", "it's", 'say "hi"', "back`tick", "br[0]", "x*y?", "naïve",
           "日本語", "-leading dash", "DROP TABLE t; --", "${HOME}", "$(touch pwned)"]
N = 300


@pytest.fixture(scope="module")
def hostile_table(tmp_path_factory):
    """Three files; every hostile name is informative, plus 6 noise columns."""
    rng = np.random.default_rng(21)
    X = rng.standard_normal((N, len(HOSTILE) + 6))
    names = HOSTILE + ["noise%d" % j for j in range(6)]
    y = X[:, :len(HOSTILE)] @ np.linspace(1.0, 2.0, len(HOSTILE)) + 0.3 * rng.standard_normal(N)
    table = pa.table({**{n: X[:, j] for j, n in enumerate(names)}, "label (y)": y})
    folder = tmp_path_factory.mktemp("hostile") / "table with space"
    os.makedirs(folder)
    for i in range(3):
        pq.write_table(table.slice(i * 100, 100), folder / ("part-%d.parquet" % i))
    return str(folder)


def run_select(table, out, engine, extra=()):
    code = main(["select", "--input", table, "--label", "label (y)", "--output", str(out),
                 "--engine", engine, "--n-alphas", "20", "--l1-ratios", "1", "--no-report",
                 *extra])
    assert code == EXIT_OK
    with open(out / "manifest.json", encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def local_doc(hostile_table, tmp_path_factory):
    return run_select(hostile_table, tmp_path_factory.mktemp("local"), "local")


def test_hostile_names_survive_into_the_manifest(local_doc, tmp_path):
    check_manifest(local_doc)
    selected = [f["name"] for f in local_doc["selected"]]
    assert set(HOSTILE) <= set(selected)
    assert [c["name"] for c in local_doc["reduced_schema"] if c["role"] == "feature"] == \
        [n for n in HOSTILE + ["noise%d" % j for j in range(6)] if n in selected]
    assert local_doc["target"]["name"] == "label (y)"
    assert not os.path.exists("pwned") and not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("engine", ["dask", "spark"])
def test_every_engine_gives_the_same_manifest(engine, hostile_table, local_doc, tmp_path,
                                              request):
    request.getfixturevalue({"dask": "dask_client", "spark": "spark"}[engine])
    doc = run_select(hostile_table, tmp_path, engine)
    ours, theirs = without_volatile(doc), without_volatile(local_doc)
    assert [f["name"] for f in ours["selected"]] == [f["name"] for f in theirs["selected"]]
    np.testing.assert_allclose([f["coefficient"] for f in ours["selected"]],
                               [f["coefficient"] for f in theirs["selected"]], rtol=1e-9)
    assert ours["reduced_schema"] == theirs["reduced_schema"]


def test_apply_and_validate_find_the_hostile_columns(hostile_table, local_doc, tmp_path):
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(local_doc), encoding="utf-8")
    assert main(["validate", str(manifest), "--input", hostile_table]) == EXIT_OK
    out = tmp_path / "reduced"
    assert main(["apply", "--manifest", str(manifest), "--input", hostile_table, "--output",
                 str(out), "--engine", "local"]) == EXIT_OK
    written = pq.read_table(out)
    assert written.column_names == [c["name"] for c in local_doc["reduced_schema"]]
    assert written.num_rows == N


def test_spark_project_selects_hostile_names(spark, hostile_table, local_doc, tmp_path):
    from elasticnet_dist import read_manifest

    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(local_doc), encoding="utf-8")
    frame = spark.read.parquet(hostile_table)
    projected = read_manifest(manifest).project(frame)
    assert projected.columns == [c["name"] for c in local_doc["reduced_schema"]]
    assert projected.count() == N
