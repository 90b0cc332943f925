"""What a new user runs into: one CLI grammar, flags that say what they do, no
silently ignored option, and the CV score's place on the grid stated."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from elasticnet_dist import config as cfg
from elasticnet_dist.cli import EXIT_CONFIG, EXIT_OK, FLAG_KEYS, build_parser, main
from conftest import ROOT
from test_stage import FAST, write_table


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    folder = tmp_path_factory.mktemp("new-user") / "table"
    write_table(folder)
    return str(folder)


def _select(table, out, *extra):
    return main(["select", "--input", table, "--label", "y", "--output", str(out),
                 "--engine", "local", "--no-report", *extra])


def test_l1_ratio_without_alpha_is_a_one_value_grid(table, tmp_path, capsys):
    assert _select(table, tmp_path / "o", "--n-alphas", "20", "--l1-ratio", "0.7") == EXIT_OK
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert [entry["l1_ratio"] for entry in manifest["selection"]["grid"]] == [0.7]
    assert manifest["penalty"]["l1_ratio"] == 0.7
    assert "searches this one l1_ratio" in capsys.readouterr().err


def test_l1_ratio_and_l1_ratios_together_are_refused(table, tmp_path, capsys):
    assert _select(table, tmp_path / "o", "--l1-ratio", "0.7", "--l1-ratios", "0.5,1") \
        == EXIT_CONFIG
    assert "--l1-ratios" in capsys.readouterr().err


def test_the_best_score_at_the_end_of_the_grid_is_reported(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n, p = 400, 15
    X = rng.standard_normal((n, p))
    y = X @ rng.uniform(0.5, 1.5, p) + 0.05 * rng.standard_normal(n)  # every column matters
    folder = tmp_path / "dense"
    folder.mkdir()
    pq.write_table(pa.table({**{"x%02d" % j: X[:, j] for j in range(p)}, "y": y}),
                   folder / "part-0.parquet")
    conf = tmp_path / "c.yaml"
    conf.write_text("search:\n  devmax: null\n  fdev: null\n  selection: min\n"
                    "  n_alphas: 10\n  eps: 0.1\n")
    assert main(["select", "--input", str(folder), "--label", "y", "--output",
                 str(tmp_path / "o"), "--engine", "local", "--config", str(conf)]) == EXIT_OK
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    selection = manifest["selection"]
    assert selection["at_grid_edge"] == "smallest_alpha"
    best = selection["scores"]["best"]
    grid = {entry["l1_ratio"]: entry["alphas"] for entry in selection["grid"]}
    assert best["alpha"] == pytest.approx(min(grid[best["l1_ratio"]]), rel=1e-12)
    assert "smallest alpha of the grid" in capsys.readouterr().err
    page = (tmp_path / "o" / "report.html").read_text()
    assert "at the smallest alpha of the grid" in page and "CV mse" in page


def test_the_chosen_and_the_best_scores_are_in_the_manifest(table, tmp_path):
    assert _select(table, tmp_path / "o", *FAST) == EXIT_OK
    selection = json.loads((tmp_path / "o" / "manifest.json").read_text())["selection"]
    chosen, best = selection["scores"]["chosen"], selection["scores"]["best"]
    assert selection["rule"] == "1se" and selection["at_grid_edge"] is None
    assert best["mean"] <= chosen["mean"] <= best["mean"] + best["se"] + 1e-12
    grid = {entry["l1_ratio"]: entry for entry in selection["grid"]}
    i = grid[best["l1_ratio"]]["alphas"].index(best["alpha"])
    assert grid[best["l1_ratio"]]["mean"][i] == best["mean"]


def test_every_select_flag_says_what_it_does_and_its_default():
    select = build_parser()._subparsers._group_actions[0].choices["select"]
    for action in select._actions:
        if action.dest in FLAG_KEYS:
            section, key = FLAG_KEYS[action.dest]
            assert action.help and "%s.%s" % (section, key) in action.help or \
                "default" in action.help, action.dest


def test_gram_max_features_zero_is_accepted_in_a_config_file(tmp_path):
    conf = tmp_path / "c.yaml"
    conf.write_text("search:\n  gram_max_features: 0\n")
    assert cfg.resolve([conf])["search"]["gram_max_features"] == 0


def test_dask_job_help_needs_no_scheduler():
    done = subprocess.run([sys.executable, str(ROOT / "pipelines" / "dask_job.py"), "--help"],
                          capture_output=True, text=True, timeout=120, env={"PATH": ""})
    assert done.returncode == 0, done.stderr
    assert "--input" in done.stdout
