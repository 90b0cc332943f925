"""Spark ML integration: :class:`ElasticNetSelector`, a ``pyspark.ml`` Estimator.

It fits on a Spark DataFrame with the package's Spark engine (the DataFrame's
own session: partial sums on the executors, the proximal steps on the driver)
and returns an :class:`ElasticNetSelectorModel`, a Transformer that keeps the
selected features. Both persist with Spark ML's ``save``/``load`` (the model
stores its manifest), so they work inside a ``pyspark.ml.Pipeline`` in front of
any Spark ML model, and a saved ``PipelineModel`` loads back whole.

Features come either as numeric columns (``featuresCols``) or as one vector
column (``featuresCol``, e.g. from ``VectorAssembler``, whose ML attributes
name the slots). The model then

- with ``featuresCols``: drops the unselected feature columns (every other
  column stays) and, when ``outputCol`` is set, also assembles the selected
  ones into a vector column there, ready for a Spark ML model. String columns
  among them with at most ``maxLevels`` levels are categorical features, selected
  or dropped whole (one group of one-hot levels); in the assembled vector a
  selected one takes one 0/1 slot per level, in the manifest's order;
- with a vector ``featuresCol``: writes the selected slots to ``outputCol``
  (``VectorSlicer``), as Spark's own ``UnivariateFeatureSelector`` does.

The penalty, in Spark's terms:

- ``regParam`` and ``elasticNetParam`` mean what they mean in Spark's
  ``LinearRegression`` (``family="gaussian"``) and ``LogisticRegression``
  (``"binomial"``) with ``standardization``: the same problem, here solved to
  a duality-gap certificate. ``family="poisson"`` (counts, log link) reads them
  the same way as for ``"binomial"``: Spark has no elastic-net Poisson fit (its
  ``GeneralizedLinearRegression`` takes an L2 ``regParam`` only, applied inside
  each IRLS step to a standardized working label), so there is no Spark model
  to equal there. ``family="multinomial"`` (several classes, any label type) is
  glmnet's grouped multinomial: a feature's L1 part is the norm of its coefficients
  over the classes, so that it is selected for every class or none; Spark's
  multinomial ``LogisticRegression`` penalises each coefficient on its own, the
  same problem only without an L1 part (``elasticNetParam = 0``). They are aliases
  of our ``alpha`` and ``l1_ratio`` (:class:`~elasticnet_dist.ElasticNet`) read
  with ``glmnet_compat="spark"``: Spark standardizes with the sample (n - 1)
  deviation, and for the squared loss it also divides the ridge part by the
  label's deviation
  (:func:`~elasticnet_dist.penalty.peer_to_native` gives the exact map). The
  model's ``alpha`` and ``l1_ratio``, like its manifest, are the native values.
- without ``regParam`` the penalty is chosen by K-fold cross-validation over
  ``elasticNetParams`` (native ``l1_ratio`` values) x ``numAlphas`` alphas,
  rule ``selectionRule`` (``1se`` or ``min``), in one data pass for the squared
  loss (:class:`~elasticnet_dist.ElasticNetCV`).
"""
from __future__ import annotations

import json
import os
import warnings

from pyspark import keyword_only
from pyspark.ml import Estimator, Model
from pyspark.ml.feature import VectorSlicer
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import (HasElasticNetParam, HasFeaturesCol, HasFitIntercept,
                                     HasLabelCol, HasMaxIter, HasOutputCol, HasRegParam,
                                     HasStandardization, HasTol, HasWeightCol)
from pyspark.ml.util import (DefaultParamsReadable, DefaultParamsReader, DefaultParamsWritable,
                             DefaultParamsWriter, MLReadable, MLWritable)

from . import config as cfg
from .io.table import parquet_scan_files
from .losses import LOSSES
from .manifest import Manifest, build_manifest, check_manifest
from .params import DEFAULT_MAX_LEVELS
from .sparse import VectorColumn, slot_names

#: Spark ML family names and our losses (:attr:`Loss.spark_family`).
FAMILIES = {loss.spark_family: name for name, loss in LOSSES.items() if loss.spark_family}


class _SelectorParams(HasLabelCol, HasFeaturesCol, HasOutputCol, HasWeightCol, HasRegParam,
                      HasElasticNetParam, HasStandardization, HasFitIntercept, HasMaxIter,
                      HasTol):
    featuresCols = Param(Params._dummy(), "featuresCols",
                         "numeric feature columns (instead of a vector featuresCol)",
                         typeConverter=TypeConverters.toListString)
    family = Param(Params._dummy(), "family",
                   "gaussian (squared loss, regression), binomial (logistic loss, labels "
                   "0/1), poisson (counts, log link) or multinomial (several classes, each "
                   "feature selected for all or none)", typeConverter=TypeConverters.toString)
    elasticNetParams = Param(Params._dummy(), "elasticNetParams",
                             "l1_ratio values of the cross-validated grid (when regParam is "
                             "not set)", typeConverter=TypeConverters.toListFloat)
    numAlphas = Param(Params._dummy(), "numAlphas", "alphas per l1_ratio in the grid",
                      typeConverter=TypeConverters.toInt)
    numFolds = Param(Params._dummy(), "numFolds", "cross-validation folds (>= 2)",
                     typeConverter=TypeConverters.toInt)
    selectionRule = Param(Params._dummy(), "selectionRule",
                          "min (best mean score) or 1se (sparsest within one standard error)",
                          typeConverter=TypeConverters.toString)
    maxFeatures = Param(Params._dummy(), "maxFeatures",
                        "only grid points with at most this many features (0 = no limit)",
                        typeConverter=TypeConverters.toInt)
    foldSeed = Param(Params._dummy(), "foldSeed", "seed of the hashed fold assignment",
                     typeConverter=TypeConverters.toInt)
    keyCols = Param(Params._dummy(), "keyCols",
                    "key columns whose hash assigns the CV folds (as the stage's --keys): "
                    "without them the folds of a DataFrame follow its partitioning",
                    typeConverter=TypeConverters.toListString)
    stability = Param(Params._dummy(), "stability",
                      "selection frequencies over this many half-samples at the chosen "
                      "penalty (even; 0 = off; with the CV search only)",
                      typeConverter=TypeConverters.toInt)
    minStability = Param(Params._dummy(), "minStability",
                         "keep only features selected in at least this share of the "
                         "half-samples (needs stability)", typeConverter=TypeConverters.toFloat)
    warmStartFrom = Param(Params._dummy(), "warmStartFrom",
                          "a previous selection's manifest (path or URL, same family): "
                          "search the grid's alphas from 15 above its penalty to 15 below "
                          "its best score, from its coefficients (as the stage's "
                          "--warm-start)",
                          typeConverter=TypeConverters.toString)
    maxLevels = Param(Params._dummy(), "maxLevels",
                      "string featuresCols with at most this many distinct values are "
                      "categorical features (one-hot levels selected or dropped whole); "
                      "0: none", typeConverter=TypeConverters.toInt)
    offsetCol = Param(Params._dummy(), "offsetCol",
                      "a column added to the linear predictor, the log of each row's "
                      "exposure (family poisson; as GeneralizedLinearRegression's offsetCol)",
                      typeConverter=TypeConverters.toString)

    def __init__(self, *args):
        super().__init__(*args)
        self._setDefault(labelCol="label", featuresCol="features", family="gaussian",
                         elasticNetParam=0.5, elasticNetParams=[0.5, 0.9, 1.0], numAlphas=100,
                         numFolds=5, selectionRule="1se", maxFeatures=0, foldSeed=0, stability=0,
                         maxLevels=DEFAULT_MAX_LEVELS,
                         standardization=True, fitIntercept=True, maxIter=100, tol=1e-6)

    def _feature_columns(self):
        """The numeric feature columns, or None when features are a vector column."""
        return self.getOrDefault(self.featuresCols) if self.isSet(self.featuresCols) else None


class ElasticNetSelector(_SelectorParams, Estimator, DefaultParamsReadable,
                         DefaultParamsWritable):
    """Elastic-net feature selection as a Spark ML Estimator (see the module's doc).

    >>> selector = ElasticNetSelector(featuresCols=cols, labelCol="y", outputCol="features")
    >>> model = Pipeline(stages=[selector, LinearRegression()]).fit(df)  # doctest: +SKIP
    """

    @keyword_only
    def __init__(self, *, labelCol="label", featuresCol="features", featuresCols=None,
                 outputCol=None, weightCol=None, offsetCol=None, family="gaussian",
                 regParam=None,
                 elasticNetParam=0.5, elasticNetParams=None, numAlphas=100, numFolds=5,
                 selectionRule="1se", maxFeatures=0, foldSeed=0, keyCols=None, stability=0,
                 minStability=None, warmStartFrom=None, maxLevels=DEFAULT_MAX_LEVELS,
                 standardization=True, fitIntercept=True, maxIter=100, tol=1e-6):
        super().__init__()
        self._set(**{k: v for k, v in self._input_kwargs.items() if v is not None})

    @keyword_only
    def setParams(self, **kwargs):
        """Set any of the constructor's parameters."""
        return self._set(**{k: v for k, v in self._input_kwargs.items() if v is not None})

    def _fit(self, dataset):
        from . import ElasticNet, ElasticNetCV

        family = self.getOrDefault(self.family)
        if family not in FAMILIES:
            raise ValueError("family must be one of %s, got %r" % (list(FAMILIES), family))
        names, frame, vector = self._as_columns(dataset)
        vector_input = vector is not None
        label = self.getLabelCol()
        weight = self.getWeightCol() if self.isSet(self.weightCol) else None
        offset = self.getOrDefault(self.offsetCol) if self.isSet(self.offsetCol) else None
        session = dataset.sparkSession
        common = dict(loss=FAMILIES[family], fit_intercept=self.getFitIntercept(),
                      standardize=self.getStandardization(), tol=self.getTol(),
                      max_iter=self.getMaxIter(), engine="spark", cluster=session)
        if self.isSet(self.regParam) and (self.getOrDefault(self.stability)
                                          or self.isSet(self.minStability)):
            raise ValueError("stability measures the selection at the penalty the CV search "
                             "chooses; regParam fixes it: unset one of them")
        if self.isSet(self.regParam) and self.isSet(self.warmStartFrom):
            raise ValueError("warmStartFrom starts the CV search from a previous penalty; "
                             "regParam fixes it: unset one of them")
        if self.isSet(self.regParam):
            est = ElasticNet(alpha=self.getRegParam(), l1_ratio=self.getElasticNetParam(),
                             glmnet_compat="spark", **common)
        else:
            max_features = self.getOrDefault(self.maxFeatures) or None
            est = ElasticNetCV(l1_ratio=list(self.getOrDefault(self.elasticNetParams)),
                               alphas=self.getOrDefault(self.numAlphas),
                               cv=self.getOrDefault(self.numFolds),
                               selection=self.getOrDefault(self.selectionRule),
                               max_features=max_features,
                               fold_seed=self.getOrDefault(self.foldSeed),
                               stability=self.getOrDefault(self.stability),
                               min_stability=(self.getOrDefault(self.minStability)
                                              if self.isSet(self.minStability) else None),
                               warm_start_from=(self.getOrDefault(self.warmStartFrom)
                                                if self.isSet(self.warmStartFrom) else None),
                               **common)
        keys = list(self.getOrDefault(self.keyCols)) if self.isSet(self.keyCols) else None
        if keys is None and not self.isSet(self.regParam) and not vector_input \
                and not parquet_scan_files(frame):
            warnings.warn(
                "cross-validating a Spark DataFrame without keyCols: its rows are placed in "
                "folds by partition and position, which change with its partitioning (and "
                "differ from the stage's folds on the same files); set keyCols to columns "
                "that identify a row", UserWarning, stacklevel=2)
        max_levels = self.getOrDefault(self.maxLevels)
        est.fit(frame, label=label, weight=weight, offset=offset,
                features=None if vector_input else names, keys=keys, vector=vector,
                max_levels=max_levels)
        master = session.sparkContext.master
        document = build_manifest(est, _config_of(est, label, weight, offset, names, master,
                                                  max_levels),
                                  engine_address=master)
        check_manifest(document, "the selector's manifest")
        model = ElasticNetSelectorModel._create(document, names, vector_input)
        return self._copyValues(model)

    def _as_columns(self, dataset):
        """(feature names, the DataFrame to fit, the
        :class:`~elasticnet_dist.sparse.VectorColumn` the features come from or None
        for numeric columns). A vector column is read as it is: sparse vectors
        (``HashingTF``, ``CountVectorizer``, ``OneHotEncoder``) stay sparse, in CSR
        blocks on the executors, never ``rows x slots``."""
        columns = self._feature_columns()
        if columns is not None:
            missing = [c for c in columns if c not in dataset.columns]
            if missing:
                raise ValueError("featuresCols names columns the DataFrame lacks: %s"
                                 % missing[:10])
            return list(columns), dataset, None
        vector = self.getFeaturesCol()
        if vector not in dataset.columns:
            raise ValueError("featuresCol %r is not a column of the DataFrame (set featuresCols "
                             "for numeric columns)" % vector)
        names = vector_slot_names(dataset, vector)
        keep = [self.getLabelCol()] + [self.getOrDefault(param) for param in
                                       (self.weightCol, self.offsetCol) if self.isSet(param)]
        keep += list(self.getOrDefault(self.keyCols)) if self.isSet(self.keyCols) else []
        frame = dataset.select(*[_quoted(c) for c in keep + [vector]])
        return names, frame, VectorColumn(vector, names)


class ElasticNetSelectorModel(_SelectorParams, Model, MLReadable, MLWritable):
    """A fitted :class:`ElasticNetSelector`: keeps the selected features.

    Attributes: ``manifest`` (the selected-feature manifest, a dict valid against
    the package's JSON Schema), ``selectedFeatures`` (names, input order),
    ``coefficients`` (name -> coefficient), ``intercept``, ``alpha`` and
    ``l1_ratio`` (the native penalty; see the module's doc).
    """

    def __init__(self):
        super().__init__()
        self.manifest, self.featureNames, self.vectorInput = None, [], False

    @classmethod
    def _create(cls, document, names, vector_input):
        model = cls()
        model.manifest, model.featureNames = document, list(names)
        model.vectorInput = bool(vector_input)
        return model

    @property
    def selectedFeatures(self):
        """Names of the selected features, in input order."""
        chosen = set(Manifest(self.manifest).selected)
        return [n for n in self.featureNames if n in chosen]

    @property
    def selectedIndices(self):
        """Positions of the selected features among the input features (vector slots)."""
        chosen = set(Manifest(self.manifest).selected)
        return [i for i, n in enumerate(self.featureNames) if n in chosen]

    @property
    def coefficients(self):
        return Manifest(self.manifest).coefficients

    @property
    def stabilityFrequencies(self):
        """Feature name -> the share of the half-samples that selected it (with
        ``stability``; features no half-sample chose are absent), else None."""
        if "stability" not in self.manifest:
            return None
        entries = self.manifest["selected"] + self.manifest["dropped"]
        return {f["name"]: f["stability"] for f in entries if f.get("stability")}

    @property
    def intercept(self):
        return Manifest(self.manifest).intercept

    @property
    def alpha(self):
        return self.manifest["penalty"]["alpha"]

    @property
    def l1_ratio(self):
        return self.manifest["penalty"]["l1_ratio"]

    def _transform(self, dataset):
        from pyspark.sql import functions as F

        if not self.vectorInput:  # numeric feature columns
            dropped = set(self.featureNames) - set(self.selectedFeatures)
            out = dataset.select(*[F.col(_quoted(c)) for c in dataset.columns
                                   if c not in dropped])
            if not self.isSet(self.outputCol):
                return out
            return _assemble(out, self.selectedFeatures, self.getOutputCol(),
                             Manifest(self.manifest).categorical)
        vector = self.getFeaturesCol()
        if not self.selectedIndices:
            return dataset.withColumn(self.getOutputCol(), _empty_vector())
        slicer = VectorSlicer(inputCol=vector, outputCol=self.getOutputCol(),
                              indices=self.selectedIndices)
        return slicer.transform(dataset)

    # ---- persistence: the params, the feature names and the manifest ----------------------
    def write(self):
        return _ModelWriter(self)

    @classmethod
    def read(cls):
        return _ModelReader(cls)


class _ModelWriter(DefaultParamsWriter):
    def saveImpl(self, path):
        model = self.instance
        DefaultParamsWriter.saveMetadata(model, path, self.sparkSession, extraMetadata={
            "featureNames": model.featureNames, "vectorInput": model.vectorInput})
        # one row of compact JSON (no newline inside), read back with wholetext
        self.sparkSession.createDataFrame([(json.dumps(model.manifest),)], ["value"]) \
            .coalesce(1).write.text(os.path.join(path, "manifest"))


class _ModelReader(DefaultParamsReader):
    def load(self, path):
        metadata = DefaultParamsReader.loadMetadata(path, self.sparkSession)
        text = self.sparkSession.read.option("wholetext", "true") \
            .text(os.path.join(path, "manifest")).collect()
        document = json.loads("".join(row.value for row in text))
        check_manifest(document, "the saved model's manifest at %s" % path)
        model = ElasticNetSelectorModel._create(document, metadata["featureNames"],
                                                metadata["vectorInput"])
        model._resetUid(metadata["uid"])
        DefaultParamsReader.getAndSetParams(model, metadata)
        return model


def vector_slot_names(dataset, column):
    """Names of a vector column's slots from its ML attributes (``VectorAssembler``
    writes them), else ``<column>_<i>``."""
    ml_attr = dataset.schema[column].metadata.get("ml_attr", {})
    size = ml_attr.get("num_attrs") or sum(len(g) for g in ml_attr.get("attrs", {}).values())
    if not size:
        first = dataset.select(column).head()
        size = 0 if first is None else len(first[0])
    names = slot_names(column, size, ml_attr)
    if len(set(names)) != len(names):
        raise ValueError("the slots of vector column %r have duplicate names" % column)
    return list(names)


def _assemble(frame, columns, output, categorical=None):
    """``frame`` with the ``columns`` as one dense vector column ``output``: a numeric
    column's value, or one 0/1 slot per level of a ``categorical`` one (name ->
    levels; a null or unknown value: zeros). (Not ``VectorAssembler``: it cannot read
    column names with dots.)"""
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as F

    if not columns:
        return frame.withColumn(output, _empty_vector())
    categorical = categorical or {}
    values = []
    for c in columns:
        if c in categorical:
            values += [F.when(F.col(_quoted(c)) == F.lit(level), 1.0).otherwise(0.0)
                       for level in categorical[c]]
        else:
            values.append(F.col(_quoted(c)).cast("double"))
    return frame.withColumn(output, array_to_vector(F.array(*values)))


def _empty_vector():
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as F

    return array_to_vector(F.array().cast("array<double>"))


def _quoted(name):
    """A column reference that Spark does not parse (dots, spaces, backticks)."""
    return "`%s`" % name.replace("`", "``")


def _config_of(est, label, weight, offset, names, master, max_levels):
    """The stage configuration equivalent to the selector's params (for the manifest)."""
    layer = {"input": {"label": label, "weight": weight, "offset": offset,
                       "features": list(names), "max_levels": int(max_levels)},
             "model": {"loss": est.loss, "fit_intercept": bool(est.fit_intercept),
                       "standardize": bool(est.standardize), "tol": float(est.tol),
                       "max_iter": int(est.max_iter)},
             "engine": {"name": "spark", "master": master}}
    if hasattr(est, "cv_results_"):
        layer["search"] = {"l1_ratios": [float(r) for r in est.l1_ratio],
                           "n_alphas": int(est._grid()["n_alphas"]), "cv": int(est.cv),
                           "selection": est.selection, "max_features": est.max_features,
                           "fold_seed": int(est.fold_seed), "stability": int(est.stability),
                           "min_stability": est.min_stability,
                           "warm_start": (est.warm_start_from
                                          if isinstance(est.warm_start_from, str) else None)}
    else:
        layer["penalty"] = {"alpha": float(est.alpha_native_),
                            "l1_ratio": float(est.l1_ratio_native_)}
    return cfg.merge(cfg.defaults(), layer, "the ElasticNetSelector params")


__all__ = ["ElasticNetSelector", "ElasticNetSelectorModel", "vector_slot_names"]
