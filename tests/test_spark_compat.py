"""glmnet_compat against Spark MLlib itself: users migrating from Spark reproduce
their numbers. Spark runs in local[2] mode (the spark extra is installed in CI)."""
import numpy as np
import pytest

from conftest import correlated_problem
from elasticnet_dist import ElasticNet


def _frame(spark, X, y):
    from pyspark.ml.linalg import Vectors
    rows = [(Vectors.dense(r.tolist()), float(v)) for r, v in zip(X, y, strict=True)]
    return spark.createDataFrame(rows, ["features", "label"])


def _rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.fixture(scope="module")
def squared(spark):
    X, y = correlated_problem(300, 12, seed=3, scales=(0.1, 10))
    return X, y, _frame(spark, X, y)


@pytest.fixture(scope="module")
def logistic(spark):
    X, y = correlated_problem(300, 12, seed=4, loss="logistic", scales=(0.1, 10))
    return X, y, _frame(spark, X, y)


@pytest.mark.parametrize("enp", [1.0, 0.5])
def test_spark_linear_regression_lbfgs(squared, enp):
    from pyspark.ml.regression import LinearRegression
    X, y, df = squared
    model = LinearRegression(regParam=0.1, elasticNetParam=enp, solver="l-bfgs", tol=1e-15,
                             maxIter=10000).fit(df)
    theirs = model.coefficients.toArray()
    ours = ElasticNet(alpha=0.1, l1_ratio=enp, glmnet_compat="spark", tol=1e-14).fit(X, y)
    assert _rel(ours.coef_, theirs) < 1e-5
    assert abs(ours.intercept_ - model.intercept) < 1e-5 * np.abs(theirs).max()
    # Spark's iterative solvers use the sample (n - 1) deviation: the population reading misses
    glm = ElasticNet(alpha=0.1, l1_ratio=enp, glmnet_compat=True, tol=1e-14).fit(X, y)
    assert _rel(glm.coef_, theirs) > 1e-4


def test_spark_linear_regression_normal_solver_is_glmnet(squared):
    from pyspark.ml.regression import LinearRegression
    X, y, df = squared
    model = LinearRegression(regParam=0.3, elasticNetParam=0.0, solver="normal").fit(df)
    theirs = model.coefficients.toArray()
    ours = ElasticNet(alpha=0.3, l1_ratio=0.0, glmnet_compat=True, tol=1e-14).fit(X, y)
    assert _rel(ours.coef_, theirs) < 1e-9
    plain = ElasticNet(alpha=0.3, l1_ratio=0.0, tol=1e-14).fit(X, y)
    assert _rel(plain.coef_, theirs) > 1e-2  # without the mapping the ridge part is off


@pytest.mark.parametrize("enp", [1.0, 0.5, 0.0])
def test_spark_logistic_regression(logistic, enp):
    from pyspark.ml.classification import LogisticRegression
    X, y, df = logistic
    model = LogisticRegression(regParam=0.02, elasticNetParam=enp, tol=1e-15,
                               maxIter=10000).fit(df)
    theirs = model.coefficients.toArray()
    ours = ElasticNet(alpha=0.02, l1_ratio=enp, loss="logistic", glmnet_compat="spark",
                      tol=1e-14).fit(X, y)
    assert _rel(ours.coef_, theirs) < 1e-5
    assert np.array_equal(ours.coef_ != 0, theirs != 0)
