"""The five real wide tables of ../shared/data/real (71-1,993 rows, 4,088-10,000 columns).

Each is fitted at 10% of alpha_max with l1_ratio = 0.5, and the answer is checked
by the optimality (KKT) conditions computed here, independently of the package,
on the explicitly standardized matrix.
"""
import numpy as np
import pandas as pd
import pytest

from conftest import shared_path
from elasticnet_dist import ElasticNet, alpha_max, read_manifest
from elasticnet_dist.cli import main

TABLES = {"riboflavin": "squared", "ALLAML": "logistic", "Prostate_GE": "logistic",
          "arcene": "logistic", "BASEHOCK": "logistic"}


def _load(name):
    df = pd.read_parquet(shared_path("data", "real", name, name + ".parquet"))
    return df.drop(columns="y"), df["y"].to_numpy(dtype=float)


def _kkt_violation(X, y, est, alpha, l1_ratio, loss):
    X = X.to_numpy(dtype=float)
    mean, sd = X.mean(0), X.std(0)
    live = sd > 0
    Z = (X[:, live] - mean[live]) / sd[live]
    u = est.coef_[live] * sd[live]
    eta = est.intercept_ + X @ est.coef_
    resid = eta - y if loss == "squared" else 1 / (1 + np.exp(-eta)) - y
    g = Z.T @ resid / len(y)
    a, c = alpha * l1_ratio, alpha * (1 - l1_ratio)
    viol = np.where(u == 0, np.maximum(np.abs(g) - a, 0), np.abs(g + a * np.sign(u) + c * u))
    return float(np.max(viol)), abs(float(resid.mean())), np.abs(g).max()


@pytest.mark.parametrize("name", sorted(TABLES))
def test_real_table_fit_meets_the_optimality_conditions(name):
    X, y = _load(name)
    loss = TABLES[name]
    amax = alpha_max(X, y, l1_ratio=0.5, loss=loss)
    alpha = 0.1 * amax
    est = ElasticNet(alpha=alpha, l1_ratio=0.5, loss=loss, tol=1e-13).fit(X, y)
    n, p = X.shape
    k = np.count_nonzero(est.coef_)
    assert est.converged_ and 1 <= k < p
    assert est.n_passes_ <= 30
    viol, intercept_grad, scale = _kkt_violation(X, y, est, alpha, 0.5, loss)
    assert viol <= 1e-6 * scale and intercept_grad <= 1e-6 * scale
    # constant columns (arcene and BASEHOCK have some) are reported and never selected
    constant = X.std(axis=0).to_numpy() == 0
    assert np.array_equal(est.constant_features_, constant)
    assert not np.any(est.coef_[constant])
    # the selection is named after the table's columns
    assert list(est.get_feature_names_out()) == list(X.columns[est.coef_ != 0])


@pytest.mark.slow
@pytest.mark.cluster  # the integration tier: the whole stage on a full real table
@pytest.mark.parametrize("name", sorted(TABLES))
def test_real_table_through_select_with_the_defaults(name, tmp_path):
    """The stage's defaults (3 l1_ratios x 100 alphas, 5 folds, rule 1se) on each table:
    a manifest that validates, a sparse selection whose coefficients predict the
    table better than the null model, and every column accounted for."""
    path = shared_path("data", "real", name, name + ".parquet")
    loss = TABLES[name]
    assert main(["select", "--input", str(path), "--label", "y", "--loss", loss,
                 "--engine", "local", "--output", str(tmp_path), "--progress", "never"]) == 0
    manifest = read_manifest(tmp_path / "manifest.json")
    doc = manifest.document
    X, y = _load(name)
    n, p = X.shape
    k = len(manifest.selected)
    assert doc["solver"]["converged"] and 1 <= k <= min(n, p) // 2
    assert sorted(manifest.selected + [d["name"] for d in doc["dropped"]]) == sorted(X.columns)
    constant = set(X.columns[X.std(axis=0).to_numpy() == 0])
    assert {d["name"] for d in doc["dropped"] if d["reason"] == "constant"} == constant
    # the chosen point beats the null model (the first alpha) on held-out data
    sel = doc["selection"]
    grid = next(g for g in sel["grid"] if g["l1_ratio"] == doc["penalty"]["l1_ratio"])
    chosen = grid["alphas"].index(doc["penalty"]["alpha"])
    assert grid["mean"][chosen] < grid["mean"][0]
    # the manifest's coefficients, used as a downstream job would, fit the table
    eta = doc["intercept"] + X[manifest.selected].to_numpy() @ np.array(
        [manifest.coefficients[c] for c in manifest.selected])
    if loss == "squared":
        assert np.mean((y - eta) ** 2) < 0.5 * np.var(y)
    else:  # well above the majority class (arcene: 0.85 with 18 of 10,000 features)
        baseline = max(y.mean(), 1 - y.mean())
        assert np.mean((eta > 0) == (y == 1)) > baseline + 0.2
