"""What changed between two selections: the manifests of two runs of the stage.

A scheduled stage reruns on a table that moves. :func:`compare` reads two
manifest documents (the baseline, then the new one) and reports

- the selected sets: the features that entered and left, and the **churn**,
  the Jaccard distance ``1 - |A & B| / |A | B|`` of the two selected sets (0:
  the same features; 1: none in common; 0 when both are empty);
- the features kept by both whose standardized coefficient changed sign, or
  changed by more than ``coef_change`` relative to its size in the baseline,
  ``|new - old| > coef_change * |old|`` (standardized coefficients: the
  change does not depend on a column's unit); ``relative_change`` is then the
  change of its size, ``|new| / |old| - 1``;
- the chosen penalty and, when both runs cross-validated with the same
  metric, the chosen point's mean CV score;
- the input: the schema fingerprint, columns that appeared or disappeared
  (from the selected and dropped entries, which name every column that is not
  the label, a weight or a key), columns of the reduced schema whose Arrow
  type changed, and a changed label or loss.

The result is plain data (the manifest's ``drift`` section, see its schema):
:func:`text_lines` renders it for a terminal or a log, and
:func:`churn_exceeded` is the rule ``select --max-churn`` and ``diff
--max-churn`` apply to it.
"""
from __future__ import annotations

import math

#: Default relative change of a standardized coefficient reported as a change.
COEF_CHANGE = 0.5
#: Features listed per kind of change in the text rendering (the JSON has all).
TEXT_LIMIT = 20


def jaccard_distance(a, b) -> float:
    """``1 - |a & b| / |a | b|``; 0 for two empty sets."""
    a, b = set(a), set(b)
    union = a | b
    return 0.0 if not union else 1.0 - len(a & b) / len(union)


def compare(old: dict, new: dict, *, coef_change: float = COEF_CHANGE,
            baseline_path: str = "", max_churn=None) -> dict:
    """The drift from manifest document ``old`` (the baseline) to ``new``."""
    before = {f["name"]: f["coefficient_standardized"] for f in old["selected"]}
    after = {f["name"]: f["coefficient_standardized"] for f in new["selected"]}
    kept = [name for name in after if name in before]
    sign_changed, changed = [], []
    for name in kept:
        a, b = before[name], after[name]
        if (a > 0) != (b > 0):
            sign_changed.append({"name": name, "old": a, "new": b})
        elif abs(b - a) > coef_change * abs(a):
            changed.append({"name": name, "old": a, "new": b,
                            "relative_change": abs(b) / abs(a) - 1.0})  # same sign
    changed.sort(key=lambda c: -abs(c["relative_change"]))
    churn = jaccard_distance(before, after)
    return {
        "baseline": {"path": baseline_path, "run_id": old.get("run_id"),
                     "created_at": old["created_at"]},
        "churn": churn,
        "max_churn": max_churn,
        "exceeded": churn_exceeded(churn, max_churn),
        "coef_change": coef_change,
        "n_selected": {"old": len(before), "new": len(after), "both": len(kept)},
        "entered": [{"name": n, "coefficient_standardized": after[n]}
                    for n in after if n not in before],
        "left": [{"name": n, "coefficient_standardized": before[n]}
                 for n in before if n not in after],
        "sign_changed": sign_changed,
        "changed": changed,
        "penalty": {side: {"alpha": doc["penalty"]["alpha"],
                           "l1_ratio": doc["penalty"]["l1_ratio"]}
                    for side, doc in (("old", old), ("new", new))},
        "score": _score_change(old["selection"], new["selection"]),
        "schema": _schema_change(old, new),
    }


def churn_exceeded(churn, max_churn) -> bool:
    """Whether ``churn`` is above the limit (never without one)."""
    return max_churn is not None and churn > max_churn


def _score_change(old, new):
    """The chosen point's mean CV score in both runs, when both cross-validated
    with the same metric; None otherwise."""
    if old.get("method") != "cross_validation" or new.get("method") != "cross_validation":
        return None
    if old.get("metric") != new.get("metric"):
        return None
    return {"metric": new["metric"], "old": old["scores"]["chosen"]["mean"],
            "new": new["scores"]["chosen"]["mean"]}


def _columns(doc):
    """Every column a manifest names as a feature candidate, and the reduced schema's
    column types."""
    names = [f["name"] for f in doc["selected"]] + [f["name"] for f in doc["dropped"]]
    types = {c["name"]: c["type"] for c in doc["reduced_schema"]}
    return names, types


def _schema_change(old, new):
    old_names, old_types = _columns(old)
    new_names, new_types = _columns(new)
    old_set, new_set = set(old_names), set(new_names)
    return {
        "fingerprint_changed": old["input"]["schema_fingerprint"]
        != new["input"]["schema_fingerprint"],
        "columns_added": [n for n in new_names if n not in old_set],
        "columns_removed": [n for n in old_names if n not in new_set],
        "types_changed": [{"name": n, "old": old_types[n], "new": t}
                          for n, t in new_types.items()
                          if n in old_types and old_types[n] != t],
        "label_changed": old["target"]["name"] != new["target"]["name"],
        "loss_changed": old["target"]["loss"] != new["target"]["loss"],
    }


def text_lines(drift: dict, limit: int = TEXT_LIMIT) -> list:
    """The drift for a terminal or a log, one fact per line."""
    n = drift["n_selected"]
    lines = ["churn %.3f (Jaccard distance of the selected sets: %d before, %d now, %d in "
             "both)%s" % (drift["churn"], n["old"], n["new"], n["both"],
                          "" if drift["max_churn"] is None else
                          "; limit %g: %s" % (drift["max_churn"],
                                               "EXCEEDED" if drift["exceeded"] else "within"))]
    for key, title in (("entered", "entered"), ("left", "left")):
        entries = drift[key]
        if entries:
            lines.append("%s (%d): %s" % (title, len(entries), _names(entries, limit)))
    if drift["sign_changed"]:
        lines.append("sign changed (%d): %s" % (len(drift["sign_changed"]), ", ".join(
            "%s %+.3g -> %+.3g" % (c["name"], c["old"], c["new"])
            for c in drift["sign_changed"][:limit]) + _more(drift["sign_changed"], limit)))
    if drift["changed"]:
        lines.append("changed by more than %g of their size (%d): %s" % (
            drift["coef_change"], len(drift["changed"]), ", ".join(
                "%s %+.3g -> %+.3g" % (c["name"], c["old"], c["new"])
                for c in drift["changed"][:limit]) + _more(drift["changed"], limit)))
    old, new = drift["penalty"]["old"], drift["penalty"]["new"]
    lines.append("penalty: alpha %.6g -> %.6g, l1_ratio %g -> %g"
                 % (old["alpha"], new["alpha"], old["l1_ratio"], new["l1_ratio"]))
    score = drift["score"]
    if score is not None:
        lines.append("CV %s at the chosen point: %.6g -> %.6g (%s)" % (
            score["metric"], score["old"], score["new"], _relative(score["old"], score["new"])))
    schema = drift["schema"]
    facts = []
    if schema["columns_added"]:
        facts.append("%d columns added (%s)" % (len(schema["columns_added"]),
                                                _plain(schema["columns_added"], limit)))
    if schema["columns_removed"]:
        facts.append("%d columns removed (%s)" % (len(schema["columns_removed"]),
                                                  _plain(schema["columns_removed"], limit)))
    for c in schema["types_changed"][:limit]:
        facts.append("%s: %s -> %s" % (c["name"], c["old"], c["new"]))
    if schema["label_changed"]:
        facts.append("the label changed")
    if schema["loss_changed"]:
        facts.append("the loss changed")
    if facts:
        lines.append("input: " + "; ".join(facts))
    elif schema["fingerprint_changed"]:
        lines.append("input: the schema fingerprint changed (column order or other columns)")
    else:
        lines.append("input: same schema")
    return lines


def _names(entries, limit):
    return _plain([e["name"] for e in entries], limit)


def _plain(names, limit):
    return ", ".join(names[:limit]) + _more(names, limit)


def _more(items, limit):
    return "" if len(items) <= limit else ", ... (%d more)" % (len(items) - limit)


def _relative(old, new):
    if old == 0 or not math.isfinite(old):
        return "n/a"
    return "%+.2f%%" % (100.0 * (new - old) / abs(old))
