"""Driver restarts: with a checkpoint folder, a `select` whose driver process was
killed (SIGKILL, in the middle of the path solves or between data passes) is
rerun, resumes from the saved passes and path points, and writes the manifest an
uninterrupted run writes. A checkpoint of another input or configuration is
ignored with a log line."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from elasticnet_dist import ElasticNetCV
from elasticnet_dist.checkpoint import FINGERPRINT_NAME
from elasticnet_dist.datasets import make_wide_table, write_parquet
from elasticnet_dist.manifest import without_volatile

# the integration tier: drivers killed and resumed
pytestmark = [pytest.mark.slow, pytest.mark.cluster]

#: Runs the command line in a fresh interpreter with a progress observer that
#: SIGKILLs that very process at a data pass or path point (argv[1], argv[2]).
DRIVER = textwrap.dedent("""
    import os, signal, sys
    from elasticnet_dist import progress
    from elasticnet_dist.cli import main

    kind, at = sys.argv[1], int(sys.argv[2])

    class KillTheDriver:
        points = 0
        def data_pass(self, number, seconds):
            if kind == "pass" and number >= at:
                os.kill(os.getpid(), signal.SIGKILL)
        def expect_points(self, total):
            pass
        def path_point(self):
            self.points += 1
            if kind == "point" and self.points >= at:
                os.kill(os.getpid(), signal.SIGKILL)
        def close(self):
            pass

    with progress.observing(KillTheDriver()):
        sys.exit(main(sys.argv[3:]))
""")


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    path = tmp_path_factory.mktemp("driver") / "driver.py"
    path.write_text(DRIVER)
    return path


def run_select(driver, table, output, *flags, kill=("never", 0)):
    args = [sys.executable, str(driver), kill[0], str(kill[1]), "select", "--input", table,
            "--label", "y", "--output", str(output), "--progress", "never", *flags]
    return subprocess.run(args, capture_output=True, text=True, timeout=600)


def manifest(folder):
    """The manifest in ``folder`` without what differs between any two runs (the time,
    the timings) and the output section of its config (where it was written and
    whether a checkpoint folder was given)."""
    with open(os.path.join(folder, "manifest.json")) as f:
        document = without_volatile(json.load(f))
    del document["config"]["output"]
    return document


@pytest.fixture(scope="module")
def squared_table(tmp_path_factory):
    t = make_wide_table(1200, 80, n_informative=8, seed=41)
    return write_parquet(t, str(tmp_path_factory.mktemp("sq") / "t"), n_files=3)


@pytest.fixture(scope="module")
def logistic_table(tmp_path_factory):
    t = make_wide_table(900, 40, n_informative=6, seed=42, loss="logistic")
    return write_parquet(t, str(tmp_path_factory.mktemp("lg") / "t"), n_files=3)


SQUARED = ["--engine", "local", "--n-alphas", "40", "--l1-ratios", "0.5,0.9,1"]


@pytest.mark.parametrize("early_stop", [10, 3])
def test_driver_killed_during_the_paths_resumes_to_the_same_manifest(driver, squared_table,
                                                                     tmp_path, early_stop):
    """The stage's paths advance by segments for early stopping (its default patience
    10 ends none here, 3 ends two l1_ratios'): a resumed path may be ahead of the
    others, and its saved points past the stop are dropped as the uninterrupted
    run never solved them."""
    config = tmp_path / "early.yaml"
    config.write_text("search:\n  early_stop: %d\n" % early_stop)
    flags = [*SQUARED, "--config", str(config)]
    reference = run_select(driver, squared_table, tmp_path / "ref", *flags)
    assert reference.returncode == 0, reference.stderr
    stops = [g["stopped_early"] for g in manifest(tmp_path / "ref")["selection"]["grid"]]
    assert (stops == [None] * 3) == (early_stop == 10)
    ckpt = tmp_path / "ckpt"
    flags += ["--checkpoint-dir", str(ckpt)]
    killed = run_select(driver, squared_table, tmp_path / "out", *flags, kill=("point", 250))
    assert killed.returncode == -signal.SIGKILL
    assert not (tmp_path / "out" / "manifest.json").exists()
    saved = sorted(p.name for p in ckpt.iterdir())
    assert "pass-000001.npz" in saved and FINGERPRINT_NAME in saved
    n_points = sum(name.startswith("path-") for name in saved)
    assert 200 <= n_points < 3 * 6 * 40  # most of 250 saved, not the whole search

    rerun = run_select(driver, squared_table, tmp_path / "out", *flags)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming (1 data pass and %d path points saved)" % n_points in rerun.stderr
    assert "1 data pass replayed, %d path points restored" % n_points in rerun.stderr
    assert manifest(tmp_path / "out") == manifest(tmp_path / "ref")
    assert sorted(os.listdir(ckpt)) == []  # cleared once the manifest is written


def test_driver_killed_between_passes_resumes_on_a_cluster(driver, logistic_table, tmp_path,
                                                           dask_client):
    flags = ["--scheduler", dask_client.scheduler.address, "--loss", "logistic",
             "--n-alphas", "15", "--l1-ratios", "1", "--cv", "3"]
    reference = run_select(driver, logistic_table, tmp_path / "ref", *flags)
    assert reference.returncode == 0, reference.stderr
    passes = manifest(tmp_path / "ref")["solver"]["data_passes"]
    assert passes > 10
    ckpt = tmp_path / "ckpt"
    flags += ["--checkpoint-dir", str(ckpt)]
    killed = run_select(driver, logistic_table, tmp_path / "out", *flags, kill=("pass", 8))
    assert killed.returncode == -signal.SIGKILL
    logged = sorted(p.name for p in ckpt.glob("pass-*.npz"))
    assert logged == ["pass-%06d.npz" % i for i in range(1, 8)]  # pass 8 died unlogged

    rerun = run_select(driver, logistic_table, tmp_path / "out", *flags)
    assert rerun.returncode == 0, rerun.stderr
    assert "7 data passes replayed" in rerun.stderr
    ours, theirs = manifest(tmp_path / "out"), manifest(tmp_path / "ref")
    assert ours["solver"]["data_passes"] == passes
    assert ours == theirs


def test_a_checkpoint_of_other_data_or_settings_is_ignored(driver, squared_table, tmp_path):
    ckpt = tmp_path / "ckpt"
    flags = [*SQUARED, "--checkpoint-dir", str(ckpt)]
    killed = run_select(driver, squared_table, tmp_path / "a", *flags, kill=("point", 100))
    assert killed.returncode == -signal.SIGKILL
    other = ["--n-alphas", "30"]  # another grid: nothing saved may be used
    rerun = run_select(driver, squared_table, tmp_path / "a", *flags, *other)
    assert rerun.returncode == 0, rerun.stderr
    assert "belongs to another input or configuration" in rerun.stderr
    assert "0 data passes replayed, 0 path points restored" in rerun.stderr
    fresh = run_select(driver, squared_table, tmp_path / "b", *SQUARED, *other)
    assert fresh.returncode == 0, fresh.stderr
    assert manifest(tmp_path / "a") == manifest(tmp_path / "b")


def test_changed_values_change_the_fingerprint(tmp_path):
    t = make_wide_table(300, 12, n_informative=3, seed=43)
    ckpt = str(tmp_path / "ckpt")
    ElasticNetCV(cv=3, alphas=10, checkpoint_dir=ckpt).fit(t.X, t.y)
    with open(os.path.join(ckpt, FINGERPRINT_NAME)) as f:
        first = json.load(f)["fingerprint"]
    X = t.X.copy()
    X[123, 7] += 1e-9  # one value, far below anything a row count or schema would show
    changed = ElasticNetCV(cv=3, alphas=10, checkpoint_dir=ckpt).fit(X, t.y)
    with open(os.path.join(ckpt, FINGERPRINT_NAME)) as f:
        assert json.load(f)["fingerprint"] != first
    fresh = ElasticNetCV(cv=3, alphas=10).fit(X, t.y)
    assert np.array_equal(changed.mse_path_, fresh.mse_path_)


@pytest.mark.parametrize("cut", [0, 1, 7, 19])
def test_paths_resume_after_any_point_to_the_last_bit(tmp_path, cut):
    """Every path truncated after point ``cut`` (0: only the data pass kept)."""
    t = make_wide_table(800, 60, n_informative=6, seed=44)
    kw = dict(l1_ratio=[0.5, 1.0], cv=4, alphas=20)
    ref = ElasticNetCV(**kw).fit(t.X, t.y)
    ckpt = tmp_path / "ckpt"
    ElasticNetCV(checkpoint_dir=str(ckpt), **kw).fit(t.X, t.y)
    for path in ckpt.glob("path-*.npz"):
        if int(path.stem.rsplit("-a", 1)[1]) >= cut:
            path.unlink()
    resumed = ElasticNetCV(checkpoint_dir=str(ckpt), **kw).fit(t.X, t.y)
    for name in ("coef_path_", "intercept_path_", "mse_path_", "n_features_path_"):
        assert np.array_equal(getattr(resumed, name), getattr(ref, name), equal_nan=True), name
    assert (resumed.alpha_, resumed.l1_ratio_) == (ref.alpha_, ref.l1_ratio_)


def test_a_logged_pass_for_another_request_ends_the_replay(tmp_path, caplog):
    t = make_wide_table(400, 20, n_informative=4, seed=45, loss="logistic")
    kw = dict(l1_ratio=1.0, cv=3, alphas=8, loss="logistic")
    ckpt = tmp_path / "ckpt"
    ref = ElasticNetCV(checkpoint_dir=str(ckpt), **kw).fit(t.X, t.y)
    # pass 4 swapped for pass 5: the rerun asks for pass 4's request and finds another
    os.replace(ckpt / "pass-000005.npz", ckpt / "pass-000004.npz")
    with caplog.at_level("INFO", logger="elasticnet_dist"):
        again = ElasticNetCV(checkpoint_dir=str(ckpt), **kw).fit(t.X, t.y)
    assert "checkpoint pass 4 was made for another request; replay ends there" in caplog.text
    assert "3 data passes replayed" in caplog.text
    assert np.array_equal(again.scores_, ref.scores_, equal_nan=True)
    assert again.n_passes_ == ref.n_passes_
