"""Drift between runs: ``elasticnet-dist diff``, ``select --baseline --max-churn``
(exit 7 after writing), the manifest's ``drift`` section and the report's."""
from __future__ import annotations

import copy
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import run_cli
from elasticnet_dist.cli import EXIT_CONFIG, EXIT_DRIFT, EXIT_MANIFEST, EXIT_OK
from elasticnet_dist.drift import compare, jaccard_distance, text_lines
from elasticnet_dist.manifest import check_manifest

FAST = ["--n-alphas", "20", "--l1-ratios", "1", "--cv", "3", "--engine", "local"]


def write_day(folder, effects, seed, extra_column=False, n=600, p=24):
    """A day's table: p features x00.., the label y from ``effects`` (index -> size)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    y = sum(size * X[:, j] for j, size in effects.items()) + 0.5 * rng.standard_normal(n)
    cols = {"x%02d" % j: X[:, j] for j in range(p)}
    if extra_column:
        cols["late"] = rng.standard_normal(n)
    os.makedirs(folder)
    pq.write_table(pa.table({**cols, "y": y}), os.path.join(folder, "part-0.parquet"))
    return folder


@pytest.fixture(scope="module")
def days(tmp_path_factory):
    """Two runs of the stage: day 2's label moved from x03 to x05 and x06, and its
    table gained a column; day 1 again on the same data (churn 0)."""
    root = tmp_path_factory.mktemp("days")
    day1 = write_day(root / "t1", {0: 2.0, 1: -1.5, 2: 1.0, 3: 0.8}, seed=1)
    day2 = write_day(root / "t2", {0: 2.0, 1: 1.5, 2: 1.0, 5: 0.8, 6: -0.9}, seed=2,
                     extra_column=True)
    first = run_cli("select", "--input", day1, "--label", "y", "--output", root / "o1", *FAST,
                "--no-report")
    assert first.returncode == EXIT_OK, first.stderr[-2000:]
    return root, day1, day2


def _manifest(folder):
    return json.loads((folder / "manifest.json").read_text())


def test_churn_is_the_jaccard_distance():
    assert jaccard_distance([], []) == 0.0
    assert jaccard_distance("ab", "ab") == 0.0
    assert jaccard_distance("ab", "cd") == 1.0
    assert jaccard_distance("abc", "bcd") == pytest.approx(0.5)


def test_compare_names_every_kind_of_change(days):
    root, *_ = days
    old = _manifest(root / "o1")
    new = copy.deepcopy(old)
    names = [f["name"] for f in old["selected"]]
    assert len(names) >= 4
    new["selected"] = [dict(f) for f in old["selected"][:-1]]  # the last one left
    new["selected"][0]["coefficient_standardized"] *= -1.0     # a sign change
    new["selected"][1]["coefficient_standardized"] *= 1.8      # +80%
    new["selected"][2]["coefficient_standardized"] *= 1.2      # +20%: under the threshold
    entering = next(d["name"] for d in old["dropped"] if d["reason"] == "zero_coefficient")
    new["selected"].append({"name": entering, "coefficient": 0.1,
                            "coefficient_standardized": 0.1, "rank": len(names)})
    new["dropped"] = [d for d in old["dropped"] if d["name"] != entering] \
        + [{"name": "late", "reason": "zero_coefficient"}]
    new["reduced_schema"] = [dict(c, type="float" if c["name"] == names[0] else c["type"])
                             for c in old["reduced_schema"]]
    new["penalty"] = dict(old["penalty"], alpha=old["penalty"]["alpha"] / 2)
    drift = compare(old, new, coef_change=0.5, baseline_path="o1/manifest.json", max_churn=0.3)
    assert [f["name"] for f in drift["left"]] == [names[-1]]
    assert [f["name"] for f in drift["entered"]] == [entering]
    assert [c["name"] for c in drift["sign_changed"]] == [names[0]]
    assert [c["name"] for c in drift["changed"]] == [names[1]]
    assert drift["changed"][0]["relative_change"] == pytest.approx(0.8)
    k = len(names)
    assert drift["churn"] == pytest.approx(1 - (k - 1) / (k + 1))
    assert drift["exceeded"] == (drift["churn"] > 0.3)
    assert drift["schema"]["columns_added"] == ["late"]
    assert drift["schema"]["types_changed"] == [{"name": names[0], "old": "double",
                                                 "new": "float"}]
    assert drift["penalty"]["new"]["alpha"] == pytest.approx(old["penalty"]["alpha"] / 2)
    check_manifest(dict(old, drift=drift))  # the section matches its schema
    text = "\n".join(text_lines(drift))
    assert "left (1): %s" % names[-1] in text and "entered (1): %s" % entering in text
    assert "1 columns added (late)" in text and "%s: double -> float" % names[0] in text


def test_select_with_a_baseline_writes_the_drift_and_exits_7_above_the_limit(days):
    root, day1, day2 = days
    before = (root / "o1" / "manifest.json").read_bytes()
    done = run_cli("select", "--input", day2, "--label", "y", "--output", root / "o2", *FAST,
               "--baseline", root / "o1" / "manifest.json", "--max-churn", "0.2")
    assert done.returncode == EXIT_DRIFT, done.stderr[-2000:]
    assert "DriftExceededError" in done.stderr and "drift.max_churn 0.2" in done.stderr
    new = _manifest(root / "o2")  # written before the exit code
    check_manifest(new)
    drift = new["drift"]
    assert drift["exceeded"] and drift["churn"] > 0.2 and drift["max_churn"] == 0.2
    entered = {f["name"] for f in drift["entered"]}
    assert {"x05", "x06"} <= entered and "x03" in {f["name"] for f in drift["left"]}
    assert "x01" in {c["name"] for c in drift["sign_changed"]}
    assert drift["schema"]["columns_added"] == ["late"] and drift["schema"]["fingerprint_changed"]
    assert drift["score"]["metric"] == "mse"
    assert (root / "o1" / "manifest.json").read_bytes() == before  # the baseline untouched
    page = (root / "o2" / "report.html").read_text()
    assert "Change from the baseline" in page and "the run exited 7" in page
    # the same change under a generous limit: exit 0, the same drift
    loose = run_cli("select", "--input", day2, "--label", "y", "--output", root / "o3", *FAST,
                "--no-report", "--baseline", root / "o1" / "manifest.json", "--max-churn", "0.9")
    assert loose.returncode == EXIT_OK, loose.stderr[-2000:]
    assert _manifest(root / "o3")["drift"]["churn"] == pytest.approx(drift["churn"], abs=0)
    # diff of the two manifests says the same, as text and as JSON
    text = run_cli("diff", root / "o1" / "manifest.json", root / "o2" / "manifest.json")
    assert text.returncode == EXIT_OK and "churn %.3f" % drift["churn"] in text.stdout
    assert "x05" in text.stdout and "1 columns added (late)" in text.stdout
    as_json = run_cli("diff", root / "o1" / "manifest.json", root / "o2" / "manifest.json",
                  "--format", "json", "--max-churn", "0.1")
    assert as_json.returncode == EXIT_DRIFT
    assert json.loads(as_json.stdout)["entered"] == drift["entered"]


def test_a_daily_rerun_against_its_own_manifest_has_no_churn(days):
    root, day1, _ = days
    out = root / "daily"
    for _ in range(2):  # the second run reads the first's manifest, then replaces it
        done = run_cli("select", "--input", day1, "--label", "y", "--output", out, *FAST,
                   "--no-report", "--baseline", out / "manifest.json", "--max-churn", "0")
        if not (out / "manifest.json").exists():
            assert done.returncode == EXIT_MANIFEST  # no baseline yet: named, nothing written
            assert "drift.baseline" in done.stderr
            done = run_cli("select", "--input", day1, "--label", "y", "--output", out, *FAST,
                       "--no-report")
        assert done.returncode == EXIT_OK, done.stderr[-2000:]
    drift = _manifest(out)["drift"]
    assert drift["churn"] == 0.0 and not drift["exceeded"]
    assert drift["entered"] == drift["left"] == drift["sign_changed"] == drift["changed"] == []
    assert drift["penalty"]["old"] == drift["penalty"]["new"]
    assert not drift["schema"]["fingerprint_changed"]


def test_bad_drift_options_are_named_before_any_fit(days, tmp_path):
    root, day1, _ = days
    no_baseline = run_cli("select", "--input", day1, "--label", "y", "--output", tmp_path / "o",
                      *FAST, "--max-churn", "0.2")
    assert no_baseline.returncode == EXIT_CONFIG and "--baseline" in no_baseline.stderr
    too_big = run_cli("diff", root / "o1" / "manifest.json", root / "o1" / "manifest.json",
                  "--max-churn", "1.5")
    assert too_big.returncode == EXIT_CONFIG and "max_churn" in too_big.stderr
    broken = tmp_path / "broken.json"
    broken.write_text('{"schema_version": "1.1"}')
    bad = run_cli("select", "--input", day1, "--label", "y", "--output", tmp_path / "o", *FAST,
              "--baseline", broken)
    assert bad.returncode == EXIT_MANIFEST and "broken.json" in bad.stderr
    assert "loaded" not in bad.stderr  # refused before the table was read
    assert not (tmp_path / "o" / "manifest.json").exists()
    assert run_cli("diff", broken, root / "o1" / "manifest.json").returncode == EXIT_MANIFEST
