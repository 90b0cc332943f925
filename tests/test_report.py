"""report.html and its figures beside a manifest, the ``report`` command, the stage
without matplotlib, and MLflow runs in a local file store."""
from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from elasticnet_dist.cli import EXIT_CONFIG, EXIT_MANIFEST, EXIT_OK, main
from elasticnet_dist.manifest import check_manifest
from elasticnet_dist.report import FIGURES, REPORT_NAME

from test_stage import FAST, load, write_table

pytest.importorskip("matplotlib", reason="needs the plot extra: pip install -e '.[plot]'")

#: column names a report must show as they are: HTML, mathtext and non-ASCII
HOSTILE = ["x00 <b>bold</b>", "$\\alpha$ & co", "naïve \"quoted\" 'col'"]


@pytest.fixture(scope="module")
def hostile_table(tmp_path_factory):
    """The stage test table with three informative columns renamed to hostile names."""
    import pyarrow.parquet as pq

    folder = tmp_path_factory.mktemp("report") / "table"
    table = write_table(folder)
    names = [HOSTILE[int(n[1:])] if n in ("x00", "x01", "x02") else n
             for n in table.column_names]
    for path in sorted(os.listdir(folder)):
        part = pq.read_table(os.path.join(folder, path))
        pq.write_table(part.rename_columns(names), os.path.join(folder, path))
    return str(folder)


def select(table, out, *extra):
    return main(["select", "--input", table, "--label", "y", "--keys", "id", "--output",
                 str(out), "--engine", "local", *FAST, *extra])


@pytest.fixture(scope="module")
def cv_output(hostile_table, tmp_path_factory):
    out = tmp_path_factory.mktemp("cv-report")
    assert select(hostile_table, out) == EXIT_OK
    return out


def read_png(path):
    from matplotlib.image import imread

    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400, image.shape
    return image


def image_sources(page):
    return re.findall(r'<img src="([^"]+)"', page)


def test_cv_report_has_every_figure_and_the_page_references_them(cv_output):
    page = (cv_output / REPORT_NAME).read_text(encoding="utf-8")
    assert sorted(image_sources(page)) == sorted(FIGURES.values())
    for name in FIGURES.values():
        image = read_png(cv_output / name)
        assert image[..., :3].std() > 0.05  # not a blank canvas
    assert "<script" not in page and "http://" not in page and "https://" not in page


def test_report_shows_the_manifest_numbers_and_escapes_every_name(cv_output):
    doc = load(cv_output)
    page = (cv_output / REPORT_NAME).read_text(encoding="utf-8")
    assert "alpha = %.6g, l1_ratio = %g" % (doc["penalty"]["alpha"],
                                              doc["penalty"]["l1_ratio"]) in page
    assert "Selected features (%d)" % len(doc["selected"]) in page
    selected = [f["name"] for f in doc["selected"]]
    assert set(HOSTILE) <= set(selected)  # informative columns, chosen under their names
    for name in selected:
        assert "<td>%s</td>" % html.escape(name) in page
    assert "<b>bold</b>" not in page  # the column name is text, not markup
    for f in doc["dropped"][:5]:
        assert "<code>%s</code>" % html.escape(f["name"]) in page


def test_manifest_path_holds_the_selected_features_and_ends_at_the_chosen_fit(cv_output):
    doc = load(cv_output)
    path = doc["selection"]["path"]
    assert path["l1_ratio"] == doc["penalty"]["l1_ratio"]
    assert [f["name"] for f in path["features"]] == [f["name"] for f in doc["selected"]]
    at = path["alphas"].index(doc["penalty"]["alpha"])
    for feature, chosen in zip(path["features"], doc["selected"], strict=True):
        assert feature["coefficients_standardized"][at] == chosen["coefficient_standardized"]
        assert feature["coefficients_standardized"][0] == 0.0  # alpha_max: nothing selected
    grid = next(g for g in doc["selection"]["grid"] if g["l1_ratio"] == path["l1_ratio"])
    reached = [a for a, k in zip(grid["alphas"], grid["n_features"], strict=True)
               if k is not None]
    assert path["alphas"] == reached


def test_report_command_rebuilds_the_same_page_elsewhere(cv_output, tmp_path):
    assert main(["report", str(cv_output / "manifest.json"), "--output",
                 str(tmp_path)]) == EXIT_OK
    again = (tmp_path / REPORT_NAME).read_text(encoding="utf-8")
    first = (cv_output / REPORT_NAME).read_text(encoding="utf-8")
    rel = os.path.relpath(cv_output / "manifest.json", tmp_path)
    assert again == first.replace("<td>manifest.json</td>", "<td>%s</td>" % html.escape(rel))
    for name in FIGURES.values():
        assert read_png(tmp_path / name).shape == read_png(cv_output / name).shape


def test_report_command_on_a_broken_manifest_exits_6_and_writes_nothing(tmp_path):
    bad = tmp_path / "manifest.json"
    bad.write_text(json.dumps({"schema_version": "1.0"}))
    assert main(["report", str(bad)]) == EXIT_MANIFEST
    assert sorted(os.listdir(tmp_path)) == ["manifest.json"]


def test_fixed_penalty_report_has_no_path_and_removes_a_stale_one(hostile_table, tmp_path):
    assert select(hostile_table, tmp_path) == EXIT_OK  # CV: all three figures
    assert (tmp_path / FIGURES["path"]).exists()
    assert select(hostile_table, tmp_path, "--alpha", "0.1") == EXIT_OK
    page = (tmp_path / REPORT_NAME).read_text(encoding="utf-8")
    assert image_sources(page) == [FIGURES["top"]]
    assert "the penalty was fixed" in page
    assert not (tmp_path / FIGURES["path"]).exists() and not (tmp_path / FIGURES["cv"]).exists()
    read_png(tmp_path / FIGURES["top"])
    assert "path" not in load(tmp_path)["selection"]


def test_no_report_flag_and_no_leftover_staging_folders(hostile_table, tmp_path):
    assert select(hostile_table, tmp_path, "--no-report") == EXIT_OK
    assert sorted(os.listdir(tmp_path)) == ["manifest.json"]
    assert select(hostile_table, tmp_path) == EXIT_OK
    assert sorted(os.listdir(tmp_path)) == sorted(["manifest.json", REPORT_NAME,
                                                   *FIGURES.values()])


def test_without_matplotlib_the_stage_runs_and_says_the_report_was_skipped(hostile_table,
                                                                          tmp_path):
    # a fresh interpreter in which importing matplotlib fails, as in an image without
    # the plot extra
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from elasticnet_dist.cli import main\n"
            "sys.exit(main(sys.argv[1:]))")
    args = ["select", "--input", hostile_table, "--label", "y", "--output", str(tmp_path),
            "--engine", "local", *FAST]
    run = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == EXIT_OK, run.stderr
    assert "report skipped: matplotlib is not installed" in run.stderr
    assert sorted(os.listdir(tmp_path)) == ["manifest.json"]
    check_manifest(load(tmp_path))
    report = subprocess.run([sys.executable, "-c", code, "report",
                             str(tmp_path / "manifest.json")],
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == EXIT_CONFIG and "elasticnet_dist[plot]" in report.stderr


def test_logistic_report_plots_the_deviance_curve(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(5)
    X = rng.standard_normal((600, 12))
    y = (X[:, 0] - X[:, 1] + 0.5 * rng.standard_normal(600) > 0).astype(np.int64)
    table = pa.table({**{"g%d" % j: X[:, j] for j in range(12)}, "label": y})
    os.makedirs(tmp_path / "t")
    pq.write_table(table, tmp_path / "t" / "part-0.parquet")
    assert main(["select", "--input", str(tmp_path / "t"), "--label", "label", "--loss",
                 "logistic", "--output", str(tmp_path / "out"), "--engine", "local",
                 *FAST]) == EXIT_OK
    page = (tmp_path / "out" / REPORT_NAME).read_text(encoding="utf-8")
    assert "metric deviance" in page
    assert sorted(image_sources(page)) == sorted(FIGURES.values())
    read_png(tmp_path / "out" / FIGURES["cv"])


# ---- MLflow -----------------------------------------------------------------------------

def test_mlflow_run_in_a_local_file_store(cv_output, hostile_table, tmp_path):
    pytest.importorskip("mlflow", reason="needs the mlflow extra: pip install -e '.[mlflow]'")
    from mlflow.tracking import MlflowClient

    assert select(hostile_table, tmp_path, "--mlflow") == EXIT_OK
    doc = load(tmp_path)
    store = tmp_path / "mlruns"
    assert store.is_dir()
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri="file://%s" % store)
    experiment = client.get_experiment_by_name("elasticnet_dist")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["input.label"] == "y"
    assert float(run.data.params["chosen.alpha"]) == doc["penalty"]["alpha"]
    assert run.data.metrics["n_selected"] == len(doc["selected"])
    assert run.data.metrics["data_passes"] == doc["solver"]["data_passes"]
    assert run.data.tags["input.schema_fingerprint"] == doc["input"]["schema_fingerprint"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"manifest.json", REPORT_NAME, *FIGURES.values()}
    logged = client.download_artifacts(run.info.run_id, "manifest.json", str(tmp_path / "dl"))
    with open(logged, encoding="utf-8") as f:
        assert json.load(f) == doc


def test_mlflow_store_that_cannot_be_written_exits_5_after_the_manifest(hostile_table,
                                                                         tmp_path, capsys):
    pytest.importorskip("mlflow", reason="needs the mlflow extra: pip install -e '.[mlflow]'")
    from elasticnet_dist.cli import EXIT_ENGINE

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    code = select(hostile_table, tmp_path / "out", "--mlflow", "file://%s/mlruns" % blocker)
    assert code == EXIT_ENGINE
    check_manifest(load(tmp_path / "out"))
    assert "the manifest is written, but the run could not be logged to MLflow" in \
        capsys.readouterr().err


def test_a_report_that_cannot_be_drawn_is_a_warning_not_a_failure(hostile_table, tmp_path,
                                                                  capsys):
    (tmp_path / FIGURES["cv"]).mkdir()  # a folder where the figure goes: the rename fails
    assert select(hostile_table, tmp_path) == EXIT_OK
    check_manifest(load(tmp_path))
    assert "report not written (IsADirectoryError" in capsys.readouterr().err
    assert not (tmp_path / REPORT_NAME).exists()
    assert sorted(p for p in os.listdir(tmp_path) if p.startswith(".")) == []
