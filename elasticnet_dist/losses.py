"""Pointwise data-fit terms of the elastic-net objective: the loss protocol.

A loss is a function ``l(y, eta)`` of one label and one linear predictor
``eta = b + x.w``. The objective's data term is the weighted mean

    L(b, w) = (1 / W) * sum_i s_i * l(y_i, eta_i),    W = sum_i s_i,

so a partition contributes additive sums ``sum s_i l``, ``sum s_i l'`` and
``sum s_i l''`` (derivatives in ``eta``). That is all an engine needs to know.

Losses here:

- ``squared``:  l = (y - eta)^2 / 2,                  l' = eta - y,       l'' = 1
- ``logistic``: l = log(1 + exp(eta)) - y * eta,      l' = sigmoid(eta) - y, l'' = p (1 - p)
  with y in {0, 1};
- ``poisson``:  l = exp(eta) - y * eta - (y - y log y), l' = exp(eta) - y,  l'' = exp(eta)
  with y >= 0 (counts; the log link).

Every decision that depends on the loss is made by its object (as skglm's
datafits and glum's families): its pointwise value, derivatives and curvature
bound, the null model (intercept and loss), the inverse link, the labels it
accepts, its cross-validation metrics, whether it is quadratic (then the one-pass
Gram route and the exact intercept apply), the pieces of the duality gap, and
how its ridge part maps onto glmnet's and Spark MLlib's. No code outside this
module compares loss names: adding a loss is one new subclass of :class:`Loss`
registered in :data:`LOSSES`, plus its tests and docs.
"""
from __future__ import annotations

import numpy as np
from scipy.special import xlogy


def _sigmoid(eta):
    """Numerically stable logistic function."""
    out = np.empty_like(eta, dtype=np.float64)
    pos = eta >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-eta[pos]))
    e = np.exp(eta[~pos])
    out[~pos] = e / (1.0 + e)
    return out


class Loss:
    """The protocol every loss implements (the methods raise until overridden)."""

    #: Its name in configs, the CLI, estimators and the manifest.
    name = ""
    #: ``l''`` is constant (1): the objective is quadratic in (b, w), so moments and
    #: the Gram matrix are sufficient statistics and the scaled intercept is exact.
    quadratic = False
    #: Upper bound of l'' (the curvature; inf: unbounded).
    max_curvature = 1.0
    #: The label values a classifier predicts (None: a regression loss).
    classes = None
    #: Its linear predictor is a vector, one entry per class (:class:`Multinomial`).
    multiclass = False
    #: Takes an offset column, added to every row's linear predictor (the log of an
    #: exposure for counts). Only where the null model with offsets has a closed
    #: form from one pass of sums (Poisson: ``b = log(sum s y / sum s e^o)``).
    takes_offset = False
    #: Cross-validation metrics, the default first; each is a name in
    #: :data:`GREATER_IS_BETTER`.
    metrics = ()
    #: The metrics that need held-out histograms of eta (ranking metrics).
    histogram_metrics = ()
    #: Each metric's name in words (figure axes, reports).
    metric_titles = {}
    #: The peers' names for this family: glmnet's ``family`` and Spark MLlib's estimator.
    glmnet_family = None
    spark_family = None

    # ---- pointwise (vectorised over rows and points) ----------------------------
    @staticmethod
    def value(y, eta):
        raise NotImplementedError

    @staticmethod
    def derivative(y, eta):
        raise NotImplementedError

    @staticmethod
    def curvature(y, eta):
        raise NotImplementedError

    @staticmethod
    def inverse_link(eta):
        """The mean label at linear predictor ``eta`` (``E[y] = l'^-1``)."""
        raise NotImplementedError

    # ---- the null model (b only, w = 0) -------------------------------------------
    @classmethod
    def null_intercept(cls, moments):
        """The intercept b0 minimising L(b, 0), from the table's
        :class:`~elasticnet_dist.problem.Moments` (the weighted mean label)."""
        raise NotImplementedError

    @classmethod
    def null_loss(cls, moments, fit_intercept):
        """L at the null model: the intercept alone (or 0 without one), from the
        table's :class:`~elasticnet_dist.problem.Moments`."""
        raise NotImplementedError

    @classmethod
    def typical_curvature(cls, mean_y):
        """A curvature ``l''`` to assume where none was measured: the Newton decrement
        of unpenalised coordinates, the first Lipschitz guess of FISTA. The bound
        :attr:`max_curvature` where there is one."""
        return cls.max_curvature

    # ---- the duality gap (see :mod:`elasticnet_dist.problem`) -------------------------
    @staticmethod
    def dual_curvature(y, eta):
        """Per-row bound of the conjugate's curvature (None: not needed)."""
        return None

    @staticmethod
    def conjugate_slack(loss_value, kappa, dual_curvature=None):
        """An upper bound of the gap term that depends on the dual scaling ``kappa``,
        ``f(kappa) = L + L*(kappa grad L) - kappa eta.grad L`` (0 at ``kappa = 1``).

        Two bounds, the smaller is used (both keep the gap a certificate):

        - ``(1 - kappa) L``: ``f`` is convex with ``f(0) = L + L*(0) = L`` when
          every row's loss has infimum 0 (the label is a possible mean), and
          ``f(1) = 0``;
        - ``(1 - kappa)^2 / (2 kappa) C`` with ``C = (1/W) sum s l'^2 / l''`` (the
          pass's :meth:`dual_curvature`): the Taylor remainder of ``f`` at 1, whose
          second derivative along the segment is at most ``l'^2 / (kappa l'')`` per
          row for the logistic and Poisson losses.

        The second is quadratic in ``1 - kappa``, so rounding in the gradient of
        the support no longer puts a floor under the gap.
        """
        bound = (1.0 - kappa) * loss_value
        if dual_curvature is not None and kappa > 0:
            bound = min(bound, (1.0 - kappa) ** 2 / (2.0 * kappa) * dual_curvature)
        return bound

    # ---- labels, metrics, peers --------------------------------------------------------
    @classmethod
    def check_labels(cls, y_present, y):
        """Labels of in-memory data as floats, or a ValueError (``y_present``: the
        labels of rows with positive weight)."""
        return np.asarray(y, dtype=np.float64).ravel()

    @classmethod
    def table_label_problem(cls, summaries):
        """What is wrong with a loaded table's labels, from its blocks' summaries
        (:class:`~elasticnet_dist.io.blocks.BlockSummary`), said after the label's
        name (None: nothing)."""
        return None

    @classmethod
    def training_label_problem(cls, moments):
        """What keeps this loss from fitting a training set with these
        :class:`~elasticnet_dist.problem.Moments` (None: nothing), e.g. one class."""
        return None

    @classmethod
    def scores(cls, mean_loss, pos_hist=None, neg_hist=None):
        """The cross-validation metrics of one held-out fold: its mean loss and, for
        :attr:`histogram_metrics`, weighted histograms of eta over its rows."""
        raise NotImplementedError

    @staticmethod
    def peer_ridge_scale(sd_y, variance_correction):
        """The factor between a peer's ridge part and ours beyond ``c^2``
        (:func:`~elasticnet_dist.penalty.peer_to_native`)."""
        return 1.0

    @classmethod
    def simulate(cls, eta, rng, noise):
        """Labels drawn at linear predictor ``eta`` (for generated tables)."""
        raise NotImplementedError

    @classmethod
    def predict(cls, eta):
        """What ``predict`` returns at ``eta``: the mean, or the most likely class."""
        return eta

    @classmethod
    def score(cls, y, eta, sample_weight=None):
        """The estimators' ``score``: R^2 of the predictions (regression losses)."""
        from sklearn.metrics import r2_score

        return r2_score(y, cls.predict(eta), sample_weight=sample_weight)


class Squared(Loss):
    """l(y, eta) = (y - eta)^2 / 2."""

    name = "squared"
    quadratic = True
    max_curvature = 1.0
    metrics = ("mse",)
    metric_titles = {"mse": "mean squared error"}
    glmnet_family = "gaussian"
    spark_family = "gaussian"

    @staticmethod
    def value(y, eta):
        r = y - eta
        return 0.5 * r * r

    @staticmethod
    def derivative(y, eta):
        return eta - y

    @staticmethod
    def curvature(y, eta):
        return np.ones_like(eta, dtype=np.float64)

    @staticmethod
    def inverse_link(eta):
        return eta

    @classmethod
    def null_intercept(cls, moments):
        return moments.mean_y

    @classmethod
    def null_loss(cls, moments, fit_intercept):
        """Half the label's variance (about its mean, or about 0 without intercept)."""
        m = moments
        return 0.5 * m.var_y if fit_intercept else 0.5 * (m.var_y + m.mean_y ** 2)

    @staticmethod
    def conjugate_slack(loss_value, kappa, dual_curvature=None):
        """The gap term that depends on the dual scaling ``kappa``: ``(1 - kappa)^2 L``.

        See :class:`elasticnet_dist.problem.Problem`: the squared loss's conjugate is
        quadratic in ``kappa``, so this is exact.
        """
        return (1.0 - kappa) ** 2 * loss_value

    @classmethod
    def scores(cls, mean_loss, pos_hist=None, neg_hist=None):
        return {"mse": 2.0 * mean_loss}

    @staticmethod
    def peer_ridge_scale(sd_y, variance_correction):
        """glmnet and Spark standardise the label too: their ridge part is ours
        times ``sd_y c`` (``c`` the variance correction)."""
        return sd_y * variance_correction

    @classmethod
    def simulate(cls, eta, rng, noise):
        return eta + noise * rng.standard_normal(eta.shape[0]) + 10.0


class Logistic(Loss):
    """l(y, eta) = log(1 + exp(eta)) - y * eta, y in {0, 1}."""

    name = "logistic"
    max_curvature = 0.25
    classes = (0, 1)
    metrics = ("deviance", "auc")
    histogram_metrics = ("auc",)
    metric_titles = {"deviance": "binomial deviance (2 x log-loss)", "auc": "AUC"}
    glmnet_family = "binomial"
    spark_family = "binomial"

    @staticmethod
    def value(y, eta):
        return np.logaddexp(0.0, eta) - y * eta

    @staticmethod
    def derivative(y, eta):
        return _sigmoid(eta) - y

    @staticmethod
    def curvature(y, eta):
        p = _sigmoid(eta)
        return p * (1.0 - p)

    @staticmethod
    def inverse_link(eta):
        return 1.0 / (1.0 + np.exp(-eta))

    @classmethod
    def null_intercept(cls, moments):
        """log-odds of the weighted mean label (finite only for 0 < mean < 1)."""
        y_mean = moments.mean_y
        return float(np.log(y_mean) - np.log1p(-y_mean))

    @classmethod
    def null_loss(cls, moments, fit_intercept):
        """The entropy of the mean label (log 2 without intercept: eta = 0)."""
        if not fit_intercept:
            return float(np.log(2.0))
        mean_y = moments.mean_y
        return float(-(mean_y * np.log(mean_y) + (1 - mean_y) * np.log1p(-mean_y)))

    @staticmethod
    def dual_curvature(y, eta):
        """Odds of the wrong label, ``exp((1 - 2y) eta)``: bounds the conjugate's curvature."""
        return np.exp(np.minimum((1.0 - 2.0 * y) * eta, 700.0))

    @classmethod
    def check_labels(cls, y_present, y):
        """0/1 (or booleans), both present; messages carry scikit-learn's phrases
        ('Unknown label type', 'Only binary classification') so that its estimator
        checks recognise them."""
        from sklearn.utils.multiclass import type_of_target

        kind = type_of_target(y_present)
        if kind in ("continuous", "continuous-multioutput"):
            raise ValueError("Unknown label type: %s. y must hold labels 0 and 1 for "
                             "loss='logistic'" % kind)
        if kind not in ("binary", "multiclass"):
            raise ValueError("Unknown label type: %s. y must be a vector of labels 0 and 1 "
                             "for loss='logistic'" % kind)
        values = np.unique(np.asarray(y_present))
        if values.size > 2:
            raise ValueError("Only binary classification is supported: y must hold labels 0 "
                             "and 1 for loss='logistic'; found %d classes" % values.size)
        try:
            values = values.astype(np.float64)
        except (TypeError, ValueError):
            values = np.array([np.nan])
        if not np.all(np.isin(values, (0.0, 1.0))):
            raise ValueError("y must hold labels 0 and 1 for loss='logistic'; found %s"
                             % np.unique(np.asarray(y_present))[:5].tolist())
        if values.size < 2:
            raise ValueError("y holds a single class (%g) for loss='logistic'; both 0 and 1 "
                             "are needed" % values[0])
        return np.asarray(y, dtype=np.float64).ravel()

    @classmethod
    def table_label_problem(cls, summaries):
        for s in summaries:
            if s.label_other is not None:
                return ("must hold 0 and 1 (or booleans) for loss='logistic'; found %r in %s"
                        % (s.label_other, s.piece))
        zeros = sum(s.label_zeros for s in summaries)
        ones = sum(s.label_ones for s in summaries)
        if zeros == 0 or ones == 0:
            return ("holds one class only (%d rows of %d, none of %d) for loss='logistic'; "
                    "both 0 and 1 are needed" % (zeros + ones, 1 if ones else 0,
                                                 0 if ones else 1))
        return None

    @classmethod
    def training_label_problem(cls, moments):
        if 0.0 < moments.mean_y < 1.0:
            return None
        return "hold class %d only for loss='logistic'" % round(moments.mean_y)

    @classmethod
    def scores(cls, mean_loss, pos_hist=None, neg_hist=None):
        out = {"deviance": 2.0 * mean_loss}
        if pos_hist is not None:
            out["auc"] = auc_from_histograms(pos_hist, neg_hist)
        return out

    @classmethod
    def simulate(cls, eta, rng, noise):
        eta = eta / max(np.std(eta), 1e-12) * 2.0
        return (rng.random(eta.shape[0]) < 1.0 / (1.0 + np.exp(-eta))).astype(np.float64)

    @classmethod
    def predict(cls, eta):
        return (eta > 0).astype(np.int64)

    @classmethod
    def score(cls, y, eta, sample_weight=None):
        """Accuracy of the predicted classes."""
        from sklearn.metrics import accuracy_score

        return accuracy_score(y, cls.predict(eta), sample_weight=sample_weight)


#: The largest linear predictor whose mean ``exp(eta)`` is taken as it is (exp(700)
#: is 1e304): beyond, the loss is infinite and a Newton step is halved back.
MAX_LOG_MEAN = 700.0


class Poisson(Loss):
    """l(y, eta) = exp(eta) - y eta - (y - y log y), y >= 0 (with 0 log 0 = 0).

    The last term is constant in eta: it makes ``l`` half the unit Poisson deviance,
    so ``l >= 0`` with 0 at the saturated fit ``eta = log y``, ``2 L`` is glmnet's
    deviance, the deviance ratio is ``1 - L / L_null`` and the duality gap's
    bounds of :meth:`Loss.conjugate_slack` hold (``C = (1/W) sum s (mu - y)^2 / mu``).
    Non-integer labels are accepted (quasi-Poisson), as glmnet does.
    """

    name = "poisson"
    max_curvature = np.inf
    metrics = ("deviance",)
    metric_titles = {"deviance": "Poisson deviance"}
    glmnet_family = "poisson"
    takes_offset = True
    spark_family = "poisson"

    @staticmethod
    def _mean(eta):
        with np.errstate(over="ignore"):
            return np.exp(eta)

    @staticmethod
    def value(y, eta):
        with np.errstate(over="ignore", invalid="ignore"):
            return np.exp(eta) - y * eta - y + xlogy(y, y)

    @staticmethod
    def derivative(y, eta):
        return Poisson._mean(eta) - y

    @staticmethod
    def curvature(y, eta):
        return Poisson._mean(eta)

    @staticmethod
    def inverse_link(eta):
        return np.exp(np.minimum(eta, MAX_LOG_MEAN))

    @classmethod
    def null_intercept(cls, moments):
        """The log of the weighted mean count; with offsets ``o``, the log of the mean
        count per unit exposure, ``log(ybar / mean(e^o))`` (``sum s (e^(b + o) - y) = 0``)."""
        if moments.has_offset:
            return float(np.log(moments.mean_y) - np.log(moments.mean_eo))
        return float(np.log(moments.mean_y))

    @classmethod
    def null_loss(cls, moments, fit_intercept):
        """``mean(y log y) - ybar log ybar`` at ``b = log ybar``; ``1 - ybar + mean(y log y)``
        without intercept (``eta = 0``). With offsets ``o`` (``eta = b + o``), from
        ``mean(s l) = mean(e^eta) - b ybar - mean(y o) - ybar + mean(y log y)``:
        ``mean(y log y) - b ybar - mean(y o)`` at the null intercept ``b`` (where
        ``mean(e^eta) = ybar``), ``mean(e^o) - mean(y o) - ybar + mean(y log y)`` at b = 0."""
        m = moments
        if m.has_offset:
            if not fit_intercept:
                return float(m.mean_eo - m.mean_yo - m.mean_y + m.mean_ylogy)
            return float(m.mean_ylogy - cls.null_intercept(m) * m.mean_y - m.mean_yo)
        if not fit_intercept:
            return float(1.0 - m.mean_y + m.mean_ylogy)
        return float(m.mean_ylogy - xlogy(m.mean_y, m.mean_y))

    @classmethod
    def typical_curvature(cls, mean_y):
        """The mean count: ``l'' = mu`` averages to it at the fit with an intercept."""
        return float(max(mean_y, 1e-12))

    @staticmethod
    def dual_curvature(y, eta):
        """``(mu - y)^2 / mu = mu - 2 y + y^2 / mu``: bounds the conjugate's curvature."""
        eta = np.clip(eta, -MAX_LOG_MEAN, MAX_LOG_MEAN)
        return np.maximum(np.exp(eta) - 2.0 * y + y * y * np.exp(-eta), 0.0)

    @classmethod
    def check_labels(cls, y_present, y):
        """Non-negative numbers (counts or rates), not all 0."""
        values = np.asarray(y_present, dtype=np.float64).ravel()
        if values.size and np.any(values < 0):
            raise ValueError("y must hold non-negative counts for loss='poisson'; found %s"
                             % np.unique(values[values < 0])[:5].tolist())
        if values.size and not np.any(values > 0):
            raise ValueError("y is 0 in every row for loss='poisson': the null model's mean "
                             "count is 0 and its log is -inf; a count label needs some "
                             "positive values")
        return np.asarray(y, dtype=np.float64).ravel()

    @classmethod
    def table_label_problem(cls, summaries):
        for s in summaries:
            if s.lo_y < 0:
                return ("must hold non-negative counts for loss='poisson'; found %g in %s"
                        % (s.lo_y, s.piece))
        if sum(s.label_zeros for s in summaries) == sum(s.n_rows for s in summaries):
            return ("is 0 in every row for loss='poisson'; a count label needs some positive "
                    "values")
        return None

    @classmethod
    def training_label_problem(cls, moments):
        if moments.mean_y > 0.0:
            return None
        return "are 0 in every row for loss='poisson'"

    @classmethod
    def scores(cls, mean_loss, pos_hist=None, neg_hist=None):
        return {"deviance": 2.0 * mean_loss}

    @classmethod
    def simulate(cls, eta, rng, noise):
        eta = eta / max(np.std(eta), 1e-12) * 0.8 + 1.0
        return rng.poisson(np.exp(eta)).astype(np.float64)

    @classmethod
    def predict(cls, eta):
        """The mean count ``exp(eta)``."""
        return cls.inverse_link(eta)

    @classmethod
    def score(cls, y, eta, sample_weight=None):
        """D^2, the fraction of Poisson deviance explained (scikit-learn's
        ``PoissonRegressor.score``)."""
        from sklearn.metrics import d2_tweedie_score

        return d2_tweedie_score(y, cls.predict(eta), sample_weight=sample_weight, power=1)


class Multinomial(Loss):
    """l(y, eta) = log sum_c exp(eta_c) - eta_y: K classes, a vector of K linear
    predictors per row (``eta_c = b_c + x.w_c``), the label the class's index.

    Its predictor is a vector, so its passes and problem are those of
    :mod:`elasticnet_dist.solvers.multinomial` (the pointwise functions here take
    ``eta`` with the classes on its last axis); the solvers are every loss's. The
    penalty is glmnet's grouped one (``type.multinomial = "grouped"``): the K coefficients of a
    feature form one group, selected for every class or none. ``l >= 0`` with
    infimum 0, so the duality gap's ``(1 - kappa) L`` bound holds
    (:meth:`Loss.conjugate_slack`); ``2 L`` is glmnet's multinomial deviance.
    """

    name = "multinomial"
    #: Every diagonal entry of the Hessian in eta, ``p_c (1 - p_c)``, is at most 1/4.
    max_curvature = 0.25
    metrics = ("deviance", "misclassification")
    metric_titles = {"deviance": "multinomial deviance (2 x log-loss)",
                     "misclassification": "misclassification rate"}
    glmnet_family = "multinomial"
    spark_family = "multinomial"
    #: Its linear predictor has one entry per class.
    multiclass = True

    @staticmethod
    def probabilities(eta):
        """softmax over the last axis (the classes)."""
        z = eta - np.max(eta, axis=-1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=-1, keepdims=True)
        return z

    @staticmethod
    def values(codes, eta):
        """``log sum_c exp(eta_c) - eta_y`` for ``eta`` (m, k, K) and class indices
        ``codes`` (m,): (m, k)."""
        top = np.max(eta, axis=-1)
        lse = top + np.log(np.exp(eta - top[..., None]).sum(axis=-1))
        return lse - np.take_along_axis(eta, codes.reshape(-1, 1, 1).astype(np.intp),
                                        axis=-1)[..., 0]

    @staticmethod
    def null_loss_of(class_means, fit_intercept):
        """L at the null model: the entropy of the class shares with intercepts
        (``b_c = log pi_c``), ``log K`` without (every eta 0)."""
        pi = np.asarray(class_means, dtype=np.float64)
        if not fit_intercept:
            return float(np.log(pi.size))
        return float(-xlogy(pi, pi).sum())

    @classmethod
    def scores(cls, mean_loss, pos_hist=None, neg_hist=None, error_rate=None):
        out = {"deviance": 2.0 * mean_loss}
        if error_rate is not None:
            out["misclassification"] = error_rate
        return out

    @classmethod
    def classes_of(cls, y_present):
        """The classes: the sorted distinct labels of the rows with positive weight,
        or a ValueError when there are fewer than two."""
        classes = np.unique(np.asarray(y_present).ravel())
        if classes.size < 2:
            raise ValueError("y holds a single class (%r) for loss='multinomial'; at least "
                             "two are needed" % (classes[:1].tolist() or [None])[0])
        return classes

    @classmethod
    def check_labels(cls, y_present, y):
        """Each label's index into :meth:`classes_of` (as floats, the passes' label);
        rows of weight 0 may hold other labels (they do not count): index 0."""
        classes = cls.classes_of(y_present)
        y = np.asarray(y).ravel()
        codes = np.minimum(np.searchsorted(classes, y), classes.size - 1)
        return np.where(classes[codes] == y, codes, 0).astype(np.float64)


def auc_from_histograms(pos, neg):
    """Area under the ROC curve from weighted histograms of the scores of positive
    and negative rows (same bins, increasing): P(score+ > score-) + P(tie) / 2."""
    P, N = pos.sum(), neg.sum()
    if P <= 0 or N <= 0:
        return np.nan
    below = np.cumsum(neg) - neg  # negatives in lower bins
    return float((pos @ below + 0.5 * pos @ neg) / (P * N))


#: Whether a larger value of a metric is better (for choosing the penalty).
GREATER_IS_BETTER = {"mse": False, "deviance": False, "auc": True, "misclassification": False}

LOSSES = {loss.name: loss for loss in (Squared, Logistic, Poisson, Multinomial)}
#: Every metric of every loss.
ALL_METRICS = tuple(dict.fromkeys(m for loss in LOSSES.values() for m in loss.metrics))


def same_loss(a, b):
    """Whether ``a`` and ``b`` (names or loss classes) are one loss: a previous run's
    coefficients (a warm start) are only a start for the same loss."""
    return get_loss(a) is get_loss(b)


def get_loss(name):
    """The loss class for ``name`` (a loss class is returned as it is), or a
    ValueError listing the choices."""
    if isinstance(name, type) and issubclass(name, Loss):
        return name
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(
            "loss=%r is not supported; choose one of %s" % (name, sorted(LOSSES))
        ) from None


#: The largest |offset| accepted: e^o stays inside float64 (e^700 ~ 1e304).
MAX_ABS_OFFSET = 700.0


def check_offset_loss(offset, loss):
    """A ValueError when an offset is given for a loss that takes none."""
    loss = get_loss(loss)
    if offset is not None and not loss.takes_offset:
        takes = sorted(n for n, cls in LOSSES.items() if cls.takes_offset)
        raise ValueError("an offset (%s) is only for loss=%s, where it is the log of each "
                         "row's exposure; loss=%r takes none"
                         % ("column %r" % offset if isinstance(offset, str) else "an array",
                            " or ".join(map(repr, takes)), loss.name))


def check_solver_supports(solver, loss, needs_quadratic=False):
    """A ValueError naming the solver and loss when the solver needs a quadratic
    loss (the Gram-matrix solvers) and ``loss`` is not one."""
    loss = get_loss(loss)
    if needs_quadratic and not loss.quadratic:
        quadratic = sorted(n for n, cls in LOSSES.items() if cls.quadratic)
        raise ValueError("solver=%r needs a quadratic loss (%s), not loss=%r"
                         % (solver, ", ".join(quadratic), loss.name))
