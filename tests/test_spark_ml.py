"""The Spark ML Estimator: inside pyspark.ml Pipelines, against Spark's own models at
the same regParam/elasticNetParam, and through Spark ML persistence (local[2])."""
from __future__ import annotations

import json

import numpy as np
import pytest

from elasticnet_dist.manifest import check_manifest

pytest.importorskip("pyspark", reason="needs the spark extra: pip install -e '.[dev,spark]'")

N, P = 400, 16
COLUMNS = ["x%02d" % j for j in range(P - 2)] + ["with.dot", "with space"]


def _rel(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


@pytest.fixture(scope="module")
def frames(spark):
    """A numeric-columns frame (id, 16 features, y, label01) and the same data as arrays."""
    rng = np.random.default_rng(11)
    X = rng.standard_normal((N, P)) * np.linspace(0.5, 3.0, P)
    eta = X[:, 0] - 0.8 * X[:, 1] + 0.4 * X[:, P - 2] + 0.5 * X[:, P - 1]
    y = eta + 0.5 * rng.standard_normal(N)
    y01 = (eta + 0.7 * rng.standard_normal(N) > 0).astype(float)
    rows = [("r%d" % i, *map(float, X[i]), float(y[i]), float(y01[i])) for i in range(N)]
    df = spark.createDataFrame(rows, ["id", *COLUMNS, "y", "label01"]).repartition(3).cache()
    return df, X, y, y01


def test_cv_selector_in_a_pipeline_in_front_of_linear_regression(frames):
    from pyspark.ml import Pipeline
    from pyspark.ml.regression import LinearRegression

    from elasticnet_dist.spark_ml import ElasticNetSelector, ElasticNetSelectorModel

    df, X, y, _ = frames
    selector = ElasticNetSelector(featuresCols=COLUMNS, labelCol="y", outputCol="features",
                                  numAlphas=30, elasticNetParams=[0.5, 1.0])
    pipeline = Pipeline(stages=[selector, LinearRegression(labelCol="y")])
    fitted = pipeline.fit(df)
    model, regression = fitted.stages
    assert isinstance(model, ElasticNetSelectorModel)
    check_manifest(model.manifest)
    chosen = model.selectedFeatures
    assert {"x00", "x01", "with.dot", "with space"} <= set(chosen) and len(chosen) < P
    assert model.manifest["selection"]["method"] == "cross_validation"
    assert regression.numFeatures == len(chosen)
    out = fitted.transform(df)
    dropped = set(COLUMNS) - set(chosen)
    assert [c for c in out.columns if c in COLUMNS] == chosen  # input order kept
    assert not dropped & set(out.columns) and {"id", "y", "label01", "prediction"} <= set(
        out.columns)
    first = out.select("features", *[_q(c) for c in chosen]).head()
    assert first["features"].toArray().tolist() == [first[c] for c in chosen]
    resid = np.array([r.y - r.prediction for r in out.select("y", "prediction").collect()])
    assert 1 - resid.var() / y.var() > 0.8


def test_cv_selector_measures_stability_and_keeps_the_stable_features(frames):
    from elasticnet_dist.spark_ml import ElasticNetSelector

    df, _, _, _ = frames
    options = dict(featuresCols=COLUMNS, labelCol="y", numAlphas=20, elasticNetParams=[1.0],
                   keyCols=["id"], stability=10)
    plain = ElasticNetSelector(**options).fit(df)
    strict = ElasticNetSelector(**options, minStability=0.9).fit(df)
    check_manifest(strict.manifest)
    frequencies = strict.stabilityFrequencies
    assert frequencies == plain.stabilityFrequencies  # the same groups and half-samples
    assert strict.manifest["stability"]["n_subsamples"] == 10
    assert strict.selectedFeatures == [c for c in plain.selectedFeatures
                                       if frequencies[c] >= 0.9]
    assert {"x00", "x01"} <= set(strict.selectedFeatures)
    assert all(0 < f <= 1 for f in frequencies.values())
    with pytest.raises(ValueError, match="regParam fixes it"):
        ElasticNetSelector(featuresCols=COLUMNS, labelCol="y", regParam=0.1,
                           stability=10).fit(df)


def test_cv_selector_warm_starts_from_a_previous_manifest(frames, tmp_path):
    from elasticnet_dist.spark_ml import ElasticNetSelector

    df, _, _, _ = frames
    options = dict(featuresCols=COLUMNS, labelCol="y", numAlphas=60, elasticNetParams=[1.0],
                   keyCols=["id"])
    whole = ElasticNetSelector(**options).fit(df)
    previous = tmp_path / "manifest.json"
    previous.write_text(json.dumps(whole.manifest))
    warm = ElasticNetSelector(**options, warmStartFrom=str(previous)).fit(df)
    check_manifest(warm.manifest)
    info = warm.manifest["selection"]["warm_start"]
    assert info["baseline"] == str(previous) and not info["fell_back"]
    alphas = warm.manifest["selection"]["grid"][0]["alphas"]
    whole_best = whole.manifest["selection"]["scores"]["best"]["alpha"]
    assert len(alphas) < 60 and whole.alpha in alphas and whole_best in alphas
    assert warm.selectedFeatures == whole.selectedFeatures and warm.alpha == whole.alpha
    assert warm.manifest["solver"]["data_passes"] <= whole.manifest["solver"]["data_passes"]
    with pytest.raises(ValueError, match="regParam fixes it"):
        ElasticNetSelector(featuresCols=COLUMNS, labelCol="y", regParam=0.1,
                           warmStartFrom=str(previous)).fit(df)


def test_reg_param_means_what_it_means_in_spark_linear_regression(frames):
    from pyspark.ml.functions import array_to_vector
    from pyspark.ml.regression import LinearRegression
    from pyspark.sql import functions as F

    from elasticnet_dist.spark_ml import ElasticNetSelector

    df, *_ = frames
    model = ElasticNetSelector(featuresCols=COLUMNS, labelCol="y", regParam=0.3,
                               elasticNetParam=0.8, tol=1e-12).fit(df)
    # (VectorAssembler cannot read the dotted name)
    assembled = df.withColumn("v", array_to_vector(F.array(*[_q(c) for c in COLUMNS])))
    theirs = LinearRegression(featuresCol="v", labelCol="y", regParam=0.3, elasticNetParam=0.8,
                              solver="l-bfgs", tol=1e-15, maxIter=10000).fit(assembled)
    spark_coef = theirs.coefficients.toArray()
    ours = np.array([model.coefficients.get(c, 0.0) for c in COLUMNS])
    assert _rel(ours, spark_coef) < 1e-5
    assert [c for c, w in zip(COLUMNS, spark_coef, strict=True) if abs(w) > 1e-8] == \
        model.selectedFeatures
    assert model.manifest["selection"] == {"method": "fixed"}
    assert model.alpha != 0.3  # the native alpha differs: Spark's meaning was mapped


def test_vector_features_with_binomial_family_match_spark_logistic_regression(frames):
    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import VectorAssembler

    from elasticnet_dist.spark_ml import ElasticNetSelector

    df, *_ = frames
    names = [c.replace(".", "_") for c in COLUMNS]  # VectorAssembler cannot read dotted names
    plain = df.select("label01", *[df[_q(c)].alias(n) for c, n in zip(COLUMNS, names,
                                                                      strict=True)])
    assembled = VectorAssembler(inputCols=names, outputCol="raw").transform(plain)
    selector = ElasticNetSelector(featuresCol="raw", outputCol="features", labelCol="label01",
                                  family="binomial", regParam=0.05, elasticNetParam=1.0,
                                  tol=1e-12)
    fitted = Pipeline(stages=[selector, LogisticRegression(labelCol="label01")]).fit(assembled)
    model = fitted.stages[0]
    theirs = LogisticRegression(featuresCol="raw", labelCol="label01", regParam=0.05,
                                elasticNetParam=1.0, tol=1e-15, maxIter=10000).fit(assembled)
    spark_coef = theirs.coefficients.toArray()
    ours = np.array([model.coefficients.get(c, 0.0) for c in names])
    assert _rel(ours, spark_coef) < 1e-4
    assert model.featureNames == names  # slot names from VectorAssembler's attributes
    assert model.selectedIndices == [names.index(c) for c in model.selectedFeatures]
    row = fitted.transform(assembled).select("raw", "features").head()
    assert row["features"].toArray().tolist() == [row["raw"][i] for i in model.selectedIndices]
    assert fitted.stages[1].numFeatures == len(model.selectedFeatures)


def test_poisson_family_fits_counts_as_the_estimator_does(frames, spark):
    from elasticnet_dist import ElasticNet
    from elasticnet_dist.spark_ml import ElasticNetSelector

    _, X, _, _ = frames
    rng = np.random.default_rng(12)
    log_days = np.log(rng.uniform(0.5, 3.0, N))  # the exposure: days each row was observed
    counts = rng.poisson(np.exp(0.5 + log_days + 0.3 * X[:, 0] - 0.2 * X[:, 3])).astype(float)
    df = spark.createDataFrame([(*map(float, X[i]), float(counts[i]), float(log_days[i]))
                                for i in range(N)], [*COLUMNS, "clicks", "log_days"]
                               ).repartition(3)
    model = ElasticNetSelector(featuresCols=COLUMNS, labelCol="clicks", family="poisson",
                               offsetCol="log_days", regParam=0.02, elasticNetParam=0.9,
                               tol=1e-12).fit(df)
    ref = ElasticNet(alpha=0.02, l1_ratio=0.9, loss="poisson", glmnet_compat="spark",
                     tol=1e-12).fit(X, counts, offset=log_days)
    ours = np.array([model.coefficients.get(c, 0.0) for c in COLUMNS])
    assert _rel(ours, ref.coef_) < 1e-8
    assert {"x00", "x03"} <= set(model.selectedFeatures)
    assert model.selectedFeatures == [c for c, w in zip(COLUMNS, ref.coef_, strict=True) if w]
    assert model.manifest["target"]["loss"] == "poisson"
    assert model.manifest["target"]["offset"] == "log_days"
    check_manifest(model.manifest)


def test_models_and_pipelines_save_and_load(frames, tmp_path):
    from pyspark.ml import Pipeline, PipelineModel
    from pyspark.ml.regression import LinearRegression

    from elasticnet_dist.spark_ml import ElasticNetSelector, ElasticNetSelectorModel

    df, *_ = frames
    selector = ElasticNetSelector(featuresCols=COLUMNS, labelCol="y", outputCol="features",
                                  regParam=0.2, elasticNetParam=1.0)
    selector.save(str(tmp_path / "selector"))
    again = ElasticNetSelector.load(str(tmp_path / "selector"))
    assert again.getRegParam() == 0.2 and again.getOrDefault("featuresCols") == COLUMNS
    assert again.uid == selector.uid

    fitted = Pipeline(stages=[selector, LinearRegression(labelCol="y")]).fit(df)
    fitted.save(str(tmp_path / "pipeline"))
    loaded = PipelineModel.load(str(tmp_path / "pipeline"))
    model, back = fitted.stages[0], loaded.stages[0]
    assert isinstance(back, ElasticNetSelectorModel) and back.uid == model.uid
    assert back.manifest == model.manifest and back.selectedFeatures == model.selectedFeatures
    assert back.getOutputCol() == "features"
    before = fitted.transform(df).select("id", "prediction").orderBy("id").collect()
    after = loaded.transform(df).select("id", "prediction").orderBy("id").collect()
    assert before == after

    model.write().overwrite().save(str(tmp_path / "model"))
    alone = ElasticNetSelectorModel.load(str(tmp_path / "model"))
    assert alone.manifest == model.manifest


def test_bad_columns_and_family_are_named(frames):
    from elasticnet_dist.spark_ml import ElasticNetSelector

    df, *_ = frames
    with pytest.raises(ValueError, match="no_such_column"):
        ElasticNetSelector(featuresCols=["x00", "no_such_column"], labelCol="y",
                           regParam=0.1).fit(df)
    with pytest.raises(ValueError, match="family"):
        ElasticNetSelector(featuresCols=COLUMNS, labelCol="y", family="tweedie",
                           regParam=0.1).fit(df)
    with pytest.raises(ValueError, match="non-negative counts for loss='poisson'"):
        ElasticNetSelector(featuresCols=COLUMNS, labelCol="y", family="poisson",
                           regParam=0.1).fit(df)
    with pytest.raises(ValueError, match="featuresCol 'features'"):
        ElasticNetSelector(labelCol="y", regParam=0.1).fit(df)


def _q(name):
    return "`%s`" % name


def _stage_choice(folder, features, keys=None):
    from elasticnet_dist import ElasticNetCV

    est = ElasticNetCV(l1_ratio=[0.5, 1.0], alphas=30, cv=5, selection="1se",
                       engine="local").fit(str(folder), label="y", features=features, keys=keys)
    names = sorted(np.asarray(est.feature_names_in_)[est.coef_ != 0])
    return est.alpha_, est.l1_ratio_, names


@pytest.mark.cluster
def test_a_parquet_scan_is_read_as_its_files_with_the_stages_folds(spark, tmp_path):
    import warnings

    from elasticnet_dist.spark_ml import ElasticNetSelector
    from test_stage import write_table

    write_table(tmp_path / "t")
    features = ["x%02d" % j for j in range(40)]
    df = spark.read.parquet(str(tmp_path / "t"))
    selector = ElasticNetSelector(featuresCols=features, labelCol="y", numAlphas=30,
                                  elasticNetParams=[0.5, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a plain scan needs no keyCols
        model = selector.fit(df)
    alpha, l1_ratio, names = _stage_choice(tmp_path / "t", features)
    assert model.manifest["input"]["kind"] == "files"
    assert model.manifest["penalty"]["alpha"] == pytest.approx(alpha, rel=1e-12)
    assert model.manifest["penalty"]["l1_ratio"] == l1_ratio
    assert sorted(model.selectedFeatures) == names


@pytest.mark.cluster
def test_key_cols_give_keyed_folds_and_no_keys_on_a_frame_warns(spark, tmp_path):
    from elasticnet_dist.spark_ml import ElasticNetSelector
    from test_stage import write_table

    write_table(tmp_path / "t")
    features = ["x%02d" % j for j in range(40)]
    df = spark.read.parquet(str(tmp_path / "t")).filter("y > -1e9")  # not a plain scan
    keyed = ElasticNetSelector(featuresCols=features, labelCol="y", numAlphas=30,
                               elasticNetParams=[0.5, 1.0], keyCols=["id"]).fit(df)
    alpha, l1_ratio, names = _stage_choice(tmp_path / "t", features, keys=["id"])
    assert keyed.manifest["penalty"]["alpha"] == pytest.approx(alpha, rel=1e-9)
    assert sorted(keyed.selectedFeatures) == names
    with pytest.warns(UserWarning, match="without keyCols"):
        ElasticNetSelector(featuresCols=features, labelCol="y", numAlphas=30,
                           elasticNetParams=[0.5, 1.0]).fit(df)
