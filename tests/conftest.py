"""Shared helpers: an independent objective, reference fits, and ../shared discovery."""
from __future__ import annotations

import os
import subprocess
import sys
import pathlib

import numpy as np
import pytest
from scipy.special import xlogy

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("ELASTICNET_DIST_SHARED", ROOT.parent / "shared"))


def shared_path(*parts):
    """A path under ../shared, or skip the test (a user's own clone has no shared/)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip("needs %s (the project's ../shared folder, present in CI)" % path)
    return path


def run_cli(*args, timeout=300):
    """``elasticnet-dist ARGS`` in a process of its own (arguments made strings); the
    completed process, its output captured as text."""
    return subprocess.run([sys.executable, "-m", "elasticnet_dist.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def weighted_moments(X, s):
    W = s.sum()
    m = s @ X / W
    sd = np.sqrt(s @ (X - m) ** 2 / W)
    return m, sd


def objective(X, y, b, w, alpha, l1_ratio, loss="squared", sample_weight=None,
              standardize=True, penalty_factor=None):
    """DESIGN.md section 1, written out independently of the package."""
    s = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    W = s.sum()
    eta = b + X @ w
    if loss == "squared":
        L = 0.5 * (s @ (y - eta) ** 2) / W
    elif loss == "poisson":  # the negative log-likelihood plus log y!, which is constant in eta
        L = (s @ (np.exp(eta) - y * eta - y + xlogy(y, y))) / W
    else:
        L = (s @ (np.logaddexp(0.0, eta) - y * eta)) / W
    sd = weighted_moments(X, s)[1] if standardize else np.ones(X.shape[1])
    v = np.ones(X.shape[1]) if penalty_factor is None else np.asarray(penalty_factor)
    u = sd * w
    return L + alpha * np.sum(v * (l1_ratio * np.abs(u) + 0.5 * (1 - l1_ratio) * u * u))


def sklearn_reference(X, y, alpha, l1_ratio, loss="squared", sample_weight=None,
                      fit_intercept=True, standardize=True):
    """scikit-learn's solution of the same problem, mapped back to the original scale.

    Squared loss: ElasticNet on explicitly standardized X (tol 1e-14). Logistic:
    LogisticRegression(solver="saga", C = 1 / (alpha W)) likewise (tol 1e-13).
    """
    from sklearn.linear_model import ElasticNet as SkElasticNet
    from sklearn.linear_model import LogisticRegression

    s = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    m, sd = weighted_moments(X, s)
    if not standardize:
        sd = np.ones(X.shape[1])
    center = m if fit_intercept else np.zeros(X.shape[1])
    Z = (X - center) / sd
    if loss == "squared":
        est = SkElasticNet(alpha=alpha, l1_ratio=l1_ratio, fit_intercept=fit_intercept,
                           tol=1e-14, max_iter=1_000_000)
        est.fit(Z, y, sample_weight=sample_weight)
        u, b = est.coef_, est.intercept_
    else:
        est = LogisticRegression(C=1.0 / (alpha * s.sum()), l1_ratio=l1_ratio, solver="saga",
                                 fit_intercept=fit_intercept, tol=1e-13, max_iter=1_000_000)
        est.fit(Z, y, sample_weight=sample_weight)
        u, b = est.coef_[0], est.intercept_[0]
    w = u / sd
    return float(b - center @ w) if fit_intercept else 0.0, w


def correlated_problem(n, p, seed, correlation=0.5, scales=(1e-3, 1e3), loss="squared",
                       n_informative=5, offset=3.0):
    """A small dense problem with correlated columns on mixed scales."""
    rng = np.random.default_rng(seed)
    cov = correlation ** np.abs(np.subtract.outer(np.arange(p), np.arange(p)))
    Z = rng.standard_normal((n, p)) @ np.linalg.cholesky(cov).T
    scale = 10 ** rng.uniform(np.log10(scales[0]), np.log10(scales[1]), p)
    effects = np.zeros(p)
    idx = rng.choice(p, size=min(n_informative, p), replace=False)
    effects[idx] = rng.uniform(0.5, 2.0, idx.size) * rng.choice([-1, 1], idx.size)
    eta = Z @ effects
    if loss == "squared":
        y = eta + rng.standard_normal(n) + 1.0
    elif loss == "poisson":
        eta = eta / max(eta.std(), 1e-12) * 0.7 + 1.0
        y = rng.poisson(np.exp(eta)).astype(float)
    else:
        eta = eta / max(eta.std(), 1e-12) * 1.5
        y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
    X = Z * scale + offset * scale * rng.standard_normal(p)
    return X, y


@pytest.fixture(scope="session")
def spark():
    """A Spark local[2] session for the whole test run, bound to 127.0.0.1, no UI."""
    pytest.importorskip("pyspark", reason="needs the spark extra: pip install -e '.[dev,spark]'")
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # executors need this package
    session = (SparkSession.builder.master("local[2]").appName("elasticnet_dist-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.driver.host", "127.0.0.1")
               .config("spark.sql.shuffle.partitions", "2")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def dask_client():
    """A Dask LocalCluster of 2 worker processes on 127.0.0.1 for the whole run."""
    pytest.importorskip("distributed", reason="needs the dask extra: pip install -e '.[dask]'")
    yield from local_dask_client()


def local_dask_client(n_workers=2, **options):
    """A Client of a new LocalCluster (worker processes on 127.0.0.1), closed after use;
    ``options`` go to LocalCluster (``memory_limit=``, ...)."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None, **options)
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


# ---- test tiers -------------------------------------------------------------------------
#: Fixtures that start Spark or Dask: a test using one is in the ``cluster`` tier.
CLUSTER_FIXTURES = {"spark", "dask_client"}
#: Set in the unit tier (``-m "not cluster"``): starting Spark or Dask there fails the test.
UNIT_TIER = "ELASTICNET_DIST_UNIT_TIER"


def pytest_collection_modifyitems(config, items):
    """Mark every test that uses a cluster fixture ``cluster`` (tests that start one
    another way carry the mark themselves; the guard below catches any that do not)."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if CLUSTER_FIXTURES & set(getattr(item, "fixturenames", ())) \
                or any(_names_a_cluster(value) for value in params.values()):
            item.add_marker(pytest.mark.cluster)


def _names_a_cluster(value):
    """A test parameter that runs it on Dask or Spark: the engine's name, or a tuple
    (name, handle)."""
    if isinstance(value, tuple) and value:
        value = value[0]
    return isinstance(value, str) and value in ("dask", "spark")


def pytest_configure(config):
    if "not cluster" in (config.getoption("markexpr", "") or ""):
        os.environ[UNIT_TIER] = "1"
        _forbid_clusters()


def _forbid_clusters():
    """In the unit tier, starting a Dask cluster or client or a Spark session in this
    process fails the test with the name of the mark it lacks."""
    def refuse(*args, **kwargs):
        raise AssertionError("this test starts Dask or Spark: mark it "
                             "@pytest.mark.cluster (the unit tier runs without them)")

    try:
        import distributed

        distributed.LocalCluster.__init__ = refuse
        distributed.Client.__init__ = refuse
    except ImportError:
        pass
    try:
        from pyspark.sql import SparkSession

        SparkSession.Builder.getOrCreate = refuse
    except ImportError:
        pass
