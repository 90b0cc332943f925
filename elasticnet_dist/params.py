"""Every parameter of the model and the search, declared once.

One row per parameter: its name, the values it allows (a :class:`Rule`), its
default, a line of documentation and, where the ``select`` stage has it, its
configuration key and CLI flag. From this table come

- the estimators' checks (:func:`check_value`, used by
  :mod:`elasticnet_dist._validation`),
- the stage's configuration keys (:data:`elasticnet_dist.config.SPEC`) and so
  ``conf/default.yaml`` (a test keeps the file equal to the table),
- the CLI's choices (:func:`choices`),
- and the manifest schema's enums, which a test compares with the table.

Defaults that differ on purpose between the estimators (scikit-learn's
conventions) and the stage (glmnet's practice for a scheduled job) are the
rows with a ``stage_default``; :data:`STAGE_DIFFERENCES` lists them with the
reason, and the README prints that list.

Solver options (``tol``, ``max_iter``, ``screening``) are parameters here but
not part of the problem: the solvers receive them as
:class:`elasticnet_dist.solvers.options.SolverOptions`.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Optional

from .losses import ALL_METRICS, LOSSES

#: Upper bounds: a grid or a fold count beyond these is a typo, not a plan (each
#: costs memory and time in proportion before a single point is fitted).
MAX_ALPHAS, MAX_L1_RATIOS, MAX_FOLDS, MAX_ITER = 10_000, 100, 1_000, 100_000
MAX_SUBSAMPLES, MAX_GROUPS = 10_000, 256
#: Categorical columns: at most this many levels by default (issue 19: glmnet users
#: one-hot encode by hand; H2O's GLM takes such columns whole), and at most MAX_LEVELS.
DEFAULT_MAX_LEVELS, MAX_LEVELS = 50, 10_000


@dataclass(frozen=True)
class Rule:
    """The values a parameter allows: a check and its description in words."""

    check: Callable[[Any], bool]
    allowed: str
    values: tuple = ()   # the allowed values of a choice (for the CLI and the schema)


def choice(*values, nullable=False):
    return Rule(lambda x: (x is None and nullable) or (isinstance(x, str) and x in values),
                " or ".join(map(repr, values)) + (" or null" if nullable else ""), values)


def number(low=None, high=None, *, integer=False, nullable=False, strict_low=False,
           strict_high=False):
    def check(x):
        if x is None:
            return nullable
        kind = numbers.Integral if integer else numbers.Real
        if isinstance(x, bool) or not isinstance(x, kind) or not math.isfinite(x):
            return False
        if low is not None and (x <= low if strict_low else x < low):
            return False
        return high is None or (x < high if strict_high else x <= high)
    what = "an integer" if integer else "a number"
    bounds = []
    if low is not None:
        bounds.append("%s %s" % (">" if strict_low else ">=", low))
    if high is not None:
        bounds.append("%s %s" % ("<" if strict_high else "<=", high))
    text = ("a finite number" if not integer and not bounds else what) \
        + (" " + " and ".join(bounds) if bounds else "")
    return Rule(check, text + (" or null" if nullable else ""))


def boolean():
    return Rule(lambda x: isinstance(x, bool) or type(x).__name__ == "bool_", "true or false")


def ratios():
    one = number(0, 1)
    return Rule(lambda x: isinstance(x, list) and 0 < len(x) <= MAX_L1_RATIOS
                and all(one.check(r) for r in x),
                "a list of 1 to %d numbers in [0, 1]" % MAX_L1_RATIOS)


_SAME = object()


@dataclass(frozen=True)
class Param:
    """One parameter (see the module doc)."""

    name: str
    rule: Rule
    default: Any
    doc: str
    config: Optional[str] = None        # "section.key" of the stage's configuration
    stage_default: Any = _SAME          # the stage's default, where it differs on purpose
    why: str = ""                       # ... and why
    flag: Optional[str] = None          # the CLI flag

    @property
    def stage(self):
        """The stage's default."""
        return self.default if self.stage_default is _SAME else self.stage_default


PARAMS = {p.name: p for p in (
    # ---- the model ----------------------------------------------------------------------
    Param("loss", choice(*LOSSES), "squared",
          "squared (regression), logistic (labels 0/1), poisson (counts >= 0, log link) or "
          "multinomial (several classes; a feature is selected for all or none)",
          "model.loss", flag="--loss"),
    Param("fit_intercept", boolean(), True, "fit an unpenalised intercept",
          "model.fit_intercept"),
    Param("standardize", boolean(), True, "penalise standardized coefficients",
          "model.standardize"),
    Param("alpha", number(0, nullable=True), 1.0,
          "the penalty constant; null = choose by cross-validation", "penalty.alpha",
          stage_default=None, flag="--alpha",
          why="the stage chooses the penalty by cross-validation unless it is fixed"),
    Param("l1_ratio", number(0, 1), 0.5, "L1 share of the penalty (1: lasso, 0: ridge)",
          "penalty.l1_ratio", flag="--l1-ratio"),
    Param("solver", choice("auto", "newton", "gram", "fista"), "auto",
          "ElasticNet's solver: auto (gram for narrow quadratic problems, else newton), "
          "newton (working-set proximal Newton), gram (from the Gram matrix, one pass), "
          "fista (proximal gradient, one pass per iteration)"),
    # ---- solver options (not part of the problem) -----------------------------------------
    Param("tol", number(0, strict_low=True), 1e-6,
          "duality-gap tolerance, relative to the null deviance", "model.tol"),
    Param("max_iter", number(1, MAX_ITER, integer=True), 1000,
          "Newton iterations (one data pass each) per fit or path point", "model.max_iter",
          stage_default=100,
          why="ElasticNet's 1000 bound one fit; the stage (and ElasticNetCV, enet_path) "
              "bound each of a path's hundreds of warm-started points by 100"),
    Param("screening", boolean(), True, "sequential strong rules along the path",
          "model.screening"),
    # ---- the search ---------------------------------------------------------------------
    Param("l1_ratios", ratios(), [0.5], "L1 shares of the grid", "search.l1_ratios",
          stage_default=[0.5, 0.9, 1.0], flag="--l1-ratios",
          why="ElasticNetCV's l1_ratio defaults to scikit-learn's 0.5; the stage searches "
              "three shares from mixed to lasso"),
    Param("n_alphas", number(1, MAX_ALPHAS, integer=True), 100, "alphas per l1_ratio",
          "search.n_alphas"),
    Param("eps", number(0, 1, nullable=True, strict_low=True, strict_high=True), None,
          "smallest alpha / alpha_max; null = 1e-3 if rows > features else 1e-2",
          "search.eps"),
    Param("cv", number(2, MAX_FOLDS, integer=True), 5, "number of folds", "search.cv",
          flag="--cv"),
    Param("selection", choice("min", "1se"), "min",
          "min: best mean score; 1se: sparsest fit within one standard error of the best",
          "search.selection", stage_default="1se", flag="--selection",
          why="scikit-learn's ElasticNetCV takes the best mean score; a feature-selection "
              "stage takes glmnet's recommended 1se rule (fewer, steadier features)"),
    Param("max_features", number(1, integer=True, nullable=True), None,
          "only fits with at most this many features", "search.max_features",
          flag="--max-features"),
    Param("scoring", choice(*ALL_METRICS, nullable=True), None,
          "a CV metric of the loss (squared: mse; logistic: deviance or auc; poisson: "
          "deviance; multinomial: deviance or misclassification); null = the loss's first",
          "search.scoring"),
    Param("fold_seed", number(0, integer=True), 0, "changes every hashed fold",
          "search.fold_seed"),
    Param("devmax", number(0, 1, nullable=True), None,
          "end each path once the full-data fit explains this share of the null deviance "
          "(glmnet's devmax); null = the whole grid", "search.devmax", stage_default=0.999,
          why="the estimators walk scikit-learn's whole grid; the stage stops where glmnet "
              "does (its paths then cost a fraction)"),
    Param("fdev", number(0, 1, nullable=True), None,
          "end each path once the explained share grows by less than this fraction of "
          "itself per alpha (glmnet's fdev); null = never", "search.fdev",
          stage_default=1e-5,
          why="as devmax: the stage stops a path that no longer gains deviance, as glmnet"),
    Param("early_stop", number(1, MAX_ALPHAS, integer=True, nullable=True), None,
          "end an l1_ratio's paths once the mean CV score has been more than a standard "
          "error worse than its best for this many alphas in a row (or 5 standard errors "
          "worse at one alpha); null = never",
          "search.early_stop", stage_default=10,
          why="the estimators score scikit-learn's whole grid; the stage stops where the "
              "CV curve has turned (H2O's early_stopping), before paths head for a "
              "saturated fit"),
    Param("stability", number(0, MAX_SUBSAMPLES, integer=True), 0,
          "selection frequencies over this many half-samples at the chosen penalty "
          "(complementary pairs: an even number; 0 = off)", "search.stability",
          flag="--stability"),
    Param("stability_groups", number(4, MAX_GROUPS, integer=True), 16,
          "row groups (hashed as the folds, another seed) whose unions of half of them are "
          "the half-samples (an even number)", "search.stability_groups"),
    Param("min_stability", number(0, 1, nullable=True), None,
          "keep only the selected features chosen in at least this share of the "
          "half-samples (needs stability); null = keep every one", "search.min_stability",
          flag="--min-stability"),
    Param("gram_max_features", number(0, integer=True), 4096,
          "largest feature count for the one-pass CV route (0: never, always the pass "
          "route)", "search.gram_max_features"),
    # ---- the table and the engine ---------------------------------------------------------
    Param("nan_policy", choice("error", "drop_rows", "impute_mean"), "error",
          "missing values: stop, drop the rows, or impute feature means", "input.nan_policy"),
    Param("dtype", choice("float64", "float32"), "float64", "type of the cached blocks",
          "input.dtype"),
    Param("cache", choice("auto", "memory", "none"), "auto",
          "keep the decoded table in the workers' memory between passes: memory = always "
          "(stop before loading if it exceeds half their memory), none = read the Parquet "
          "files again every pass, auto = cache when it fits (local and dask; Spark keeps "
          "blocks on local disk)", "engine.cache"),
)}

#: Every parameter's default as the estimators take it.
ESTIMATOR_DEFAULTS = {p.name: p.default for p in PARAMS.values()}
#: Newton iterations per path point (ElasticNetCV, enet_path and the stage).
PATH_MAX_ITER = PARAMS["max_iter"].stage

#: Parameters whose stage default differs from the estimators' on purpose: name ->
#: (estimator default, stage default, why).
STAGE_DIFFERENCES = {p.name: (p.default, p.stage, p.why) for p in PARAMS.values()
                     if p.stage_default is not _SAME}


def check_value(name, value, label=None, required=False):
    """``value`` if parameter ``name`` allows it, else a ValueError naming it
    (``label``: how the caller spells it, default the name; ``required``: None is
    not allowed even where the stage takes it for "choose")."""
    param = PARAMS[name]
    if param.rule.check(value) and not (required and value is None):
        return value
    label = label or name
    if param.rule.values:
        raise ValueError("%s=%r is not supported; choose one of %s"
                         % (label, value, list(param.rule.values)))
    raise ValueError("%s must be %s, got %r" % (label, param.rule.allowed.replace(
        " or null", ""), value))


def choices(name):
    """The allowed values of a choice parameter (for argparse and the schema)."""
    return tuple(v for v in PARAMS[name].rule.values)
