"""Early stopping of a cross-validated search's paths, from the folds' held-out scores.

On the pass route every point of a fold's path is scored on its held-out rows by
the pass that certifies it, so the cross-validation curve of an l1_ratio grows
as its paths advance; the one-pass route scores each segment of alphas its paths
advance by from the folds' own moments (:mod:`.gram_segments`). Once every fold
has solved alpha ``i`` its mean score ``m_i`` over the K folds is known (signed
so that lower is better), with its standard error ``s_i`` (the fold scores'
standard deviation over sqrt(K), as :func:`~.cv.choose` takes it). With ``b``
the index of the best mean so far, the l1_ratio's paths (the full data's and the
folds') end after the alpha ``i`` at which ``m_j > m_b + s_b`` has held for
``patience`` alphas ``j`` in a row, or at once after an alpha ``i`` with
``m_i > m_b + CLEAR_MARGIN s_b`` (the curve clearly past its turn: no need to
wait for ``patience`` alphas, which are the path's most expensive; ``s_b > 0``).

The points left out lie further down the path than that rise. The choice is
the one the whole grid would give as long as (a) the curve does not come back
below ``m_b`` after ``patience`` alphas in a row more than a standard error
above it, or after one more than ``CLEAR_MARGIN`` standard errors above it, and
(b) supports do not shrink further down the path: then ``min``
never picks an unsolved point (each is worse than ``m_b``), and ``1se``, which
takes the fewest features within one standard error of the best of every
l1_ratio, finds the point at ``b``, no worse and sparser, whenever it would
find one of them. H2O's lambda search stops on the same signal
(``early_stopping``); glmnet walks every alpha. Paths heading for a saturated fit
(p > n, logistic) cost the most: on a 20,000 x 20,000 logistic search, passes past
the l1_ratio 0.5 curve's minimum took 40-60 s each, over working sets of 1,000-2,000
features. On 20,000 x 8,000 (squared, pass route) the curve stood 4.5-9.6 standard
errors above its best over the last alphas the patience rule waited for, while the
supports grew from 307 to 1,742 features.
"""
from __future__ import annotations

import logging

import numpy as np

from ..losses import GREATER_IS_BETTER, get_loss

log = logging.getLogger("elasticnet_dist")

#: Standard errors (of the best point's mean) above the best mean at which one alpha
#: ends the paths at once: a curve that far past its turn does not come back.
CLEAR_MARGIN = 5.0


def point_scores(loss, record):
    """The cross-validation metrics of one fold's point from its certifying pass's
    ``record`` (:func:`~.path.point_record`: its held-out sums); None when the point
    has no such pass or its fold no held-out weight."""
    if record is None or record["valid_weight_sum"][0] <= 0:
        return None
    mean_loss = record["valid_loss_sum"][0] / record["valid_weight_sum"][0]
    extra = {}
    if "valid_error_sum" in record:  # a classifier of several classes: its error rate
        extra["error_rate"] = record["valid_error_sum"][0] / record["valid_weight_sum"][0]
    return get_loss(loss).scores(mean_loss, *(record[key][0] if key in record else None
                                              for key in ("valid_pos_hist",
                                                          "valid_neg_hist")), **extra)


class EarlyStop:
    """The watch over one l1_ratio's fold paths (see the module doc): ``record(k, i,
    point)`` after fold ``k`` solves its point ``i``; when the rule holds it lowers the
    shared :class:`~.options.PathLimit` of the l1_ratio's paths to ``i`` and keeps
    that index in :attr:`stopped_after`."""

    def __init__(self, loss, metric, patience, n_folds, limit, n_alphas, label=""):
        self.loss, self.metric, self.patience, self.limit = loss, metric, patience, limit
        self.n_alphas = n_alphas
        self.sign = -1.0 if GREATER_IS_BETTER[metric] else 1.0
        self.scores = [[] for _ in range(n_folds)]
        self.label = label
        self.checked = 0          # alphas whose mean score has been looked at
        self.best = None          # (index, signed mean, standard error)
        self.worse_in_a_row = 0
        self.stopped_after = None

    def record(self, fold, index, point):
        """Fold ``fold``'s point ``index`` solved, scored by its certifying pass."""
        values = point_scores(self.loss, point.evaluation)
        self.record_score(fold, index, np.nan if values is None else values[self.metric])

    def record_score(self, fold, index, score):
        """Fold ``fold``'s point ``index`` scored ``score`` (NaN: no score) by its metric."""
        scores = self.scores[fold]
        scores.extend([np.nan] * (index - len(scores)))  # indices stay aligned, always
        scores.append(score)
        while self.stopped_after is None and all(len(s) > self.checked for s in self.scores):
            self._check(self.checked)
            self.checked += 1

    def fold_scores(self):
        """The scores recorded, alphas by folds, NaN after the paths' last alpha (the
        one-pass route's CV curves: its watch scores every point)."""
        out = np.full((self.n_alphas, len(self.scores)), np.nan)
        end = self.limit.last + 1
        for k, scores in enumerate(self.scores):
            out[:min(end, len(scores)), k] = scores[:end]
        return out

    def _check(self, i):
        folds = np.array([s[i] for s in self.scores])
        if not np.all(np.isfinite(folds)):
            return  # a point without a score in some fold is never chosen: no evidence
        mean = self.sign * float(folds.mean())
        se = float(folds.std(ddof=1) / np.sqrt(folds.size)) if folds.size > 1 else 0.0
        if self.best is None or mean < self.best[1]:
            self.best, self.worse_in_a_row = (i, mean, se), 0
            return
        _, best_mean, best_se = self.best
        self.worse_in_a_row = self.worse_in_a_row + 1 if mean > best_mean + best_se else 0
        clear = best_se > 0 and mean > best_mean + CLEAR_MARGIN * best_se
        if (self.worse_in_a_row >= self.patience or clear) and i < self.limit.last:
            self.stopped_after = i
            self.limit.lower(i)
            why = ("more than a standard error worse than its best (alpha %d) for %d "
                   "alphas in a row" % (self.best[0] + 1, self.patience)
                   if self.worse_in_a_row >= self.patience else
                   "%.1f standard errors worse than its best (alpha %d)"
                   % ((mean - best_mean) / best_se, self.best[0] + 1))
            log.info("%spaths end after alpha %d of %d: the mean CV %s has been %s "
                     "(search.early_stop)", self.label, i + 1, self.n_alphas, self.metric, why)
