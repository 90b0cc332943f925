"""A report beside every manifest: ``report.html`` and its PNG figures.

Everything is drawn from the manifest alone, so ``elasticnet-dist report
MANIFEST`` rebuilds the same report later and anywhere:

- ``path.png``: the standardized coefficient ``sd_j w_j`` of every selected
  feature along the full-data path of the chosen ``l1_ratio``, against
  ``alpha`` on a log axis (decreasing to the right, so features enter from the
  left as in glmnet's plot), the chosen ``alpha`` marked;
- ``cv_curve.png``: the mean held-out score over the folds against ``alpha``
  for each ``l1_ratio``, with bars of one standard error
  (``sd over folds / sqrt(K)``), the chosen point and the ``1se`` threshold;
- ``top_features.png``: the largest selected coefficients by absolute
  standardized value.

The HTML page needs no network: inline CSS, no script, figures referenced by
relative file name; every name from the table is HTML-escaped, and matplotlib
is told not to read ``$...$`` in names as mathematics. A fit with a fixed
penalty has no path or CV curve; the page says so.

matplotlib is an optional extra (``pip install 'elasticnet_dist[plot]'``);
:func:`plotting_available` tells whether it is installed.
"""
from __future__ import annotations

import html
import json
import math
import os
import posixpath
import re
import shutil
import tempfile

from ._text import count
from .drift import text_lines
from .losses import get_loss
from .manifest import chosen_grid_point

REPORT_NAME = "report.html"
FIGURES = {"path": "path.png", "cv": "cv_curve.png", "top": "top_features.png"}
#: Every file a report may have: a run's commit removes those it did not draw.
REPORT_FILES = (*FIGURES.values(), REPORT_NAME)
#: Where the manifest's run id goes: a PNG text chunk, a ``<meta>`` of the page.
PNG_RUN_KEY = "elasticnet_dist run_id"
_META_RUN = re.compile(r'<meta name="elasticnet-dist-run-id" content="([0-9a-f]{32})">')
TOP_FEATURES = 20
LABELLED_PATHS = 10
#: The colour of the paths beyond the LABELLED_PATHS named ones.
OTHER_PATHS = "#c8c8c8"


def plotting_available() -> bool:
    """Is matplotlib installed (the ``plot`` extra)?"""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def write_report(document: dict, folder, *, manifest_name="manifest.json") -> list:
    """Draw the figures of ``document`` (a manifest) and write them and
    ``report.html`` into ``folder``; returns the paths written, the page first.

    The files are drawn in a temporary folder beside them and moved into place
    in one step that signals do not interrupt (the page last); a figure that
    does not apply (no path for a fixed penalty) is removed if an earlier report
    left one. A failure leaves the previous report as it was.
    """
    from .outputs import commit_files

    folder = os.path.abspath(os.fspath(folder))
    staging = tempfile.mkdtemp(prefix=".report.", dir=folder)
    try:
        names = draw_report(document, staging, manifest_name=manifest_name)
        commit_files(staging, folder, names, stale=REPORT_FILES)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [os.path.join(folder, name) for name in [names[-1], *names[:-1]]]


def draw_report(document: dict, folder, *, manifest_name="manifest.json") -> list:
    """Draw the figures and the page of ``document`` into ``folder`` (a staging
    folder); returns the file names written, ``report.html`` last. Each file
    carries the manifest's ``run_id`` (a ``<meta>`` in the page, a PNG text chunk
    in the figures), which :func:`report_run_ids` reads back."""
    run_id = document.get("run_id")
    metadata = {"Software": None}
    if run_id:
        metadata[PNG_RUN_KEY] = run_id
    drawn = {}
    for key, draw in (("path", path_figure), ("cv", cv_figure), ("top", top_figure)):
        figure = draw(document)
        if figure is not None:
            figure.savefig(os.path.join(folder, FIGURES[key]), dpi=100, metadata=metadata)
            drawn[key] = FIGURES[key]
    page = render_html(document, drawn, manifest_name=manifest_name)
    with open(os.path.join(folder, REPORT_NAME), "w", encoding="utf-8") as f:
        f.write(page)
    return [*drawn.values(), REPORT_NAME]


def report_run_ids(folder, storage_options=None) -> dict:
    """``{file name: run id}`` of the report files in ``folder`` (a local folder or a
    store URL; None where a file carries no id, e.g. a report written before run
    ids existed)."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(folder, **(storage_options or {}))
    out = {}
    page = posixpath.join(root, REPORT_NAME) if "://" in folder else os.path.join(root,
                                                                                   REPORT_NAME)
    if fs.isfile(page):
        with fs.open(page, "rb") as f:
            match = _META_RUN.search(f.read(4096).decode("utf-8", "replace"))
        out[REPORT_NAME] = match.group(1) if match else None
    for name in FIGURES.values():
        path = posixpath.join(root, name) if "://" in folder else os.path.join(root, name)
        if fs.isfile(path):
            with fs.open(path, "rb") as f:
                out[name] = _png_text(f).get(PNG_RUN_KEY)
    return out


def _png_text(f) -> dict:
    """The ``tEXt`` chunks of a PNG file open for reading (the standard library reads
    them)."""
    import struct

    texts = {}
    if f.read(8) != b"\x89PNG\r\n\x1a\n":
        return texts
    while True:
        head = f.read(8)
        if len(head) < 8:
            return texts
        length, kind = struct.unpack(">I4s", head)
        if kind == b"IDAT" or kind == b"IEND":
            return texts  # matplotlib writes its text chunks before the image data
        data = f.read(length)
        f.read(4)  # CRC
        if kind == b"tEXt" and b"\0" in data:
            key, value = data.split(b"\0", 1)
            texts[key.decode("latin-1")] = value.decode("latin-1")


# ---- figures ------------------------------------------------------------------------------

def _figure(width=8.0, height=5.0):
    """A matplotlib Figure not registered with pyplot (no global state, no display)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _alpha_axis(ax):
    ax.set_xscale("log")
    ax.invert_xaxis()  # strong penalty on the left: features enter from the left
    ax.set_xlabel("alpha (log scale, decreasing)")
    ax.grid(True, which="major", alpha=0.3)


def path_figure(document):
    """Selected features' standardized coefficients along the chosen path, or None.

    The ``LABELLED_PATHS`` largest are drawn in colours of their own and named; the
    rest, however many (a selection of 500 would be a solid band of reused colours),
    in one light grey behind them."""
    path = document["selection"].get("path")
    if not path or not path["alphas"]:
        return None
    fig = _figure(9.0, 5.0)
    ax = fig.add_subplot()
    alphas = path["alphas"]
    features = path["features"]
    named = min(LABELLED_PATHS, len(features))
    colours = _qualitative(named)
    for rank, feature in enumerate(features):
        values = [float("nan") if v is None else v for v in feature["coefficients_standardized"]]
        if rank < named:
            ax.plot(alphas, values, lw=1.6, color=colours[rank], zorder=3,
                    label=feature["name"])
        else:
            ax.plot(alphas, values, lw=0.6, color=OTHER_PATHS, zorder=1)
    others = len(features) - named + int(path.get("features_omitted") or 0)
    if others:
        ax.plot([], [], lw=0.6, color=OTHER_PATHS, label="%d others%s" % (
            others, " (%d drawn)" % (len(features) - named) if path.get("features_omitted")
            else ""))
    ax.axhline(0.0, color="black", lw=0.6)
    chosen = document["penalty"]["alpha"]
    ax.axvline(chosen, color="crimson", ls="--", lw=1.2, label="chosen alpha = %.4g" % chosen)
    _alpha_axis(ax)
    ax.set_ylabel("standardized coefficient  sd_j * w_j")
    ax.set_title("Path at l1_ratio = %g: %d selected features (the %d largest named)"
                 % (path["l1_ratio"], len(features) + int(path.get("features_omitted") or 0),
                    named), parse_math=False)
    _legend(ax, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def cv_figure(document):
    """Mean CV score per alpha for each l1_ratio, or None: all alphas on the left,
    the region of the best and the chosen point on the right (linear axes, so the
    one-standard-error threshold shows). The chosen l1_ratio is drawn with its
    standard-error band, the others as thin lines; the best point is a diamond,
    the chosen one a star."""
    selection = document["selection"]
    if selection["method"] != "cross_validation":
        return None
    fig = _figure(12.0, 5.0)
    panels = fig.subplots(1, 2)
    chosen_alpha, chosen_l1 = document["penalty"]["alpha"], document["penalty"]["l1_ratio"]
    chosen_entry, chosen_index = chosen_grid_point(document)
    best = (selection.get("scores") or {}).get("best")
    colours = _qualitative(len(selection["grid"]))
    metric = selection["metric"]
    for ax, zoom in zip(panels, (False, True), strict=True):
        for entry, colour in zip(selection["grid"], colours, strict=True):
            a, m, s = _curve(entry)
            if not a:
                continue
            main = entry is chosen_entry
            ax.plot(a, m, "-o" if main else "-", color=colour, lw=1.6 if main else 0.9,
                    ms=2.5, alpha=1.0 if main else 0.7, zorder=3 if main else 2,
                    label="l1_ratio = %g%s" % (entry["l1_ratio"], " (chosen)" if main else ""))
            if main:
                ax.fill_between(a, [x - e for x, e in zip(m, s, strict=True)],
                                [x + e for x, e in zip(m, s, strict=True)], color=colour,
                                alpha=0.18, lw=0, label="\u00b1 1 standard error")
        ax.plot([chosen_alpha], [chosen_entry["mean"][chosen_index]], marker="*", ms=15,
                color="crimson", markeredgecolor="black", ls="none", zorder=5,
                label="chosen: alpha = %.4g, l1_ratio = %g" % (chosen_alpha, chosen_l1))
        if best and best.get("mean") is not None:
            ax.plot([best["alpha"]], [best["mean"]], marker="D", ms=7, color="gold",
                    markeredgecolor="black", ls="none", zorder=4,
                    label="best: alpha = %.4g, l1_ratio = %g" % (best["alpha"],
                                                                 best["l1_ratio"]))
        if selection.get("threshold") is not None and selection["rule"] == "1se":
            ax.axhline(selection["threshold"], color="gray", ls=":", lw=1.2,
                       label="best + 1 standard error (the 1se rule's bound)")
        _alpha_axis(ax)
        title = get_loss(document["target"]["loss"]).metric_titles.get(metric, metric)
        ax.set_ylabel("held-out %s (mean over %d folds)" % (title, selection["folds"]))
        if zoom:
            _zoom_on_choice(ax, selection, chosen_entry, chosen_alpha, best)
            ax.set_title("Near the best and the chosen point")
        else:
            ax.set_title("Cross-validation over all alphas, rule %s" % selection["rule"])
    _legend(panels[1], fontsize=7, loc="best")
    return fig


def _curve(entry):
    """(alphas, means, standard errors) of the points a path reached."""
    points = [(a, m, 0.0 if s is None else s) for a, m, s, k in zip(
        entry["alphas"], entry["mean"], entry["se"], entry["n_features"], strict=True)
        if m is not None and k is not None]
    return tuple(map(list, zip(*points, strict=True))) if points else ([], [], [])


def _zoom_on_choice(ax, selection, chosen_entry, chosen_alpha, best):
    """Limit ``ax`` to the alphas from 3x the chosen one down to a third of the best
    and the scores met there (with their standard errors)."""
    best_alpha = best["alpha"] if best else chosen_alpha
    high, low = 3.0 * max(chosen_alpha, best_alpha), min(chosen_alpha, best_alpha) / 3.0
    values = []
    for entry in selection["grid"]:
        for a, m, s in zip(*_curve(entry), strict=True):
            if low <= a <= high:
                values += [m - s, m + s]
    if selection.get("threshold") is not None:
        values.append(selection["threshold"])
    if values:
        lo, hi = min(values), max(values)
        pad = 0.08 * (hi - lo) if hi > lo else abs(hi) * 0.01 + 1e-12
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlim(high, low)  # decreasing to the right, as the alpha axis is


def _qualitative(n):
    """``n`` colours that are told apart (tab10, then tab20), never grey."""
    from matplotlib import colormaps

    names = colormaps["tab10"].colors + colormaps["tab20"].colors[1::2]
    named = [c for c in names if not (abs(c[0] - c[1]) < 0.05 and abs(c[1] - c[2]) < 0.05)]
    return [named[i % len(named)] for i in range(n)]


def top_figure(document, top=TOP_FEATURES):
    """Horizontal bars of the ``top`` largest |standardized coefficients|, or None."""
    selected = document["selected"][:top]
    if not selected:
        return None
    fig = _figure(8.0, 1.2 + 0.28 * len(selected))
    ax = fig.add_subplot()
    values = [f["coefficient_standardized"] for f in selected][::-1]
    names = [f["name"] for f in selected][::-1]
    ax.barh(range(len(values)), values,
            color=["tab:blue" if v > 0 else "tab:orange" for v in values])
    ax.set_yticks(range(len(values)), labels=names, fontsize=8, parse_math=False)
    ax.axvline(0.0, color="black", lw=0.6)
    ax.set_xlabel("standardized coefficient  sd_j * w_j")
    ax.set_title("Top %d of %d selected features" % (len(selected), len(document["selected"])))
    return fig


def _legend(ax, **options):
    legend = ax.legend(**options)
    for text in legend.get_texts():
        text.set_parse_math(False)  # a column named "$x$" stays "$x$"


# ---- the page -----------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #eee; }
.note { color: #666; } pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; }
.warn { color: #b00; }
"""


def render_html(document: dict, figures: dict, *, manifest_name="manifest.json") -> str:
    """The report page: summary, figures (``figures``: key -> file name), selected
    features, dropped columns by reason, provenance. Self-contained, no script."""
    e = html.escape
    pen, sel, solver = document["penalty"], document["selection"], document["solver"]
    source, target, engine = document["input"], document["target"], document["engine"]
    chosen = ("%d-fold cross-validation over %d l1_ratios, rule %s, metric %s"
              % (sel["folds"], len(sel["grid"]), sel["rule"], sel["metric"])
              if sel["method"] == "cross_validation" else "fixed by the configuration")
    summary = [
        ("input", source.get("uri", "")),
        ("rows used", "%d of %d read" % (source.get("rows_used", 0), source.get("rows_read", 0))),
        ("label", "%s (%s loss)" % (target["name"], target["loss"])),
        ("penalty", "alpha = %.6g, l1_ratio = %g (%s)" % (pen["alpha"], pen["l1_ratio"],
                                                         chosen)),
        *_score_rows(sel),
        ("selected", "%d features of %d considered" % (
            len(document["selected"]), len(document["selected"]) + sum(
                1 for d in document["dropped"] if d["reason"] in ("zero_coefficient",
                                                                  "constant", "unstable")))),
        *_stability_rows(document.get("stability")),
        ("solver", "%s: %s, duality gap %.3g (tolerance %.3g), converged: %s"
         % (solver["name"], count(solver["data_passes"], "data pass"), solver["duality_gap"],
            solver["tolerance"], str(solver["converged"]).lower())),
        ("engine", "%s, %s, %s" % (engine["name"], count(engine["workers"], "worker"),
                                   count(engine["partitions"], "partition"))),
        ("created", "%s by %s %s" % (document["created_at"], document["tool"]["name"],
                                     document["tool"]["version"])),
        ("manifest", manifest_name),
    ]
    run_meta = ('<meta name="elasticnet-dist-run-id" content="%s">' % e(document["run_id"])
                if document.get("run_id") else "")
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">%s' % run_meta,
             "<title>elasticnet_dist selection: %s</title>" % e(target["name"]),
             "<style>%s</style></head><body>" % _CSS,
             "<h1>Elastic-net feature selection for <code>%s</code></h1>" % e(target["name"]),
             _table(["", ""], summary, with_header=False)]
    captions = {
        "path": "Regularization path of the chosen l1_ratio (selected features; the dashed "
                "line is the chosen alpha).",
        "cv": "Cross-validation curve: mean held-out score with one-standard-error bars.",
        "top": "Largest selected coefficients (standardized: comparable across columns).",
    }
    edge = sel.get("at_grid_edge")
    if edge:
        parts.append('<p class="note">The best mean CV score is at the %s of the grid: a '
                     "better fit may lie beyond it. %s</p>" % (e(edge.replace("_", " ")), (
                         "Extend the grid to smaller alphas (search.eps, or explicit alphas)."
                         if edge == "smallest_alpha" else "No penalty that selects a feature "
                         "beats the intercept alone.")))
    if document.get("drift"):
        parts.extend(_drift_section(document["drift"]))
    parts.append("<h2>Figures</h2>")
    for key in FIGURES:
        if key in figures:
            parts.append('<figure><img src="%s" alt="%s"><figcaption>%s</figcaption></figure>'
                         % (e(figures[key]), e(captions[key]), e(captions[key])))
        elif key in ("path", "cv") and sel["method"] != "cross_validation":
            parts.append('<p class="note">No %s: the penalty was fixed (penalty.alpha), so no '
                         "path or grid was computed.</p>" % ("path figure" if key == "path"
                                                              else "CV curve"))
        elif key == "top":
            parts.append('<p class="note">No feature was selected.</p>')
    parts.append("<h2>Selected features (%d)</h2>" % len(document["selected"]))
    stable = document.get("stability") is not None
    classes = document["target"].get("classes", [])
    per_class = isinstance(document["intercept"], list)  # the multinomial loss
    if per_class:
        parts.append('<p class="note">Several classes: a feature is selected for every class '
                     "or none; its coefficient is the norm over the classes, and the columns "
                     "after it are its standardized coefficient for each class.</p>")
    parts.append(_table(["rank", "name", "coefficient", "standardized"]
                        + (["stability"] if stable else [])
                        + (["standardized: %s" % c for c in classes] if per_class else []),
                        [(f["rank"], f["name"], "%.6g" % f["coefficient"],
                          "%.6g" % f["coefficient_standardized"])
                         + (("%.2f" % f["stability"],) if stable else ())
                         + (tuple("%.6g" % _norm(v) for v in f["class_coefficients_standardized"])
                            if per_class else ())
                         for f in document["selected"]],
                        numeric=(0, *range(2, 5 + (len(classes) if per_class else 0)))))
    if stable:
        parts.extend(_unstable_section(document))
    if per_class:
        parts.append("<p>intercepts: %s</p>" % html.escape(", ".join(
            "%s %.6g" % (c, b) for c, b in zip(classes, document["intercept"], strict=True))))
    else:
        parts.append("<p>intercept: %.6g</p>" % document["intercept"])
    by_reason = {}
    for d in document["dropped"]:
        by_reason.setdefault(d["reason"], []).append(d["name"])
    parts.append("<h2>Dropped columns (%d)</h2>" % len(document["dropped"]))
    for reason, names in sorted(by_reason.items()):
        parts.append("<details><summary>%s: %d</summary><p>%s</p></details>"
                     % (e(reason), len(names), ", ".join("<code>%s</code>" % e(n)
                                                         for n in names)))
    config = document["config"]
    if sel["method"] == "cross_validation" and isinstance(config.get("penalty"), dict):
        config = {**config, "penalty": {**config["penalty"], "l1_ratio": (
            "not used: it goes with a fixed alpha; the search chose %g" % pen["l1_ratio"])}}
    parts.append("<h2>Configuration</h2><pre>%s</pre>"
                 % e(json.dumps(config, indent=2, ensure_ascii=False)))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _drift_section(drift):
    """The change from the baseline run: its facts (:func:`drift.text_lines`) and a
    table of every feature that entered, left or moved."""
    e = html.escape
    verdict = ""
    if drift["max_churn"] is not None:
        verdict = (' <strong class="warn">above the limit %g: the run exited 7</strong>'
                   % drift["max_churn"] if drift["exceeded"]
                   else " (within the limit %g)" % drift["max_churn"])
    parts = ["<h2>Change from the baseline</h2>",
             "<p>Baseline: <code>%s</code>, created %s.%s</p>"
             % (e(drift["baseline"]["path"]), e(drift["baseline"]["created_at"]), verdict),
             "<ul>%s</ul>" % "".join("<li>%s</li>" % e(line)
                                     for line in text_lines(drift, limit=TOP_FEATURES))]
    rows = ([("entered", f["name"], "", "%.6g" % f["coefficient_standardized"])
             for f in drift["entered"]]
            + [("left", f["name"], "%.6g" % f["coefficient_standardized"], "")
               for f in drift["left"]]
            + [(kind, c["name"], "%.6g" % c["old"], "%.6g" % c["new"])
               for kind, key in (("sign changed", "sign_changed"), ("changed", "changed"))
               for c in drift[key]])
    if rows:
        parts.append("<details><summary>%d features entered, left or moved</summary>%s"
                     "</details>" % (len(rows), _table(
                         ["change", "name", "standardized before", "standardized now"], rows,
                         numeric=(2, 3))))
    return parts


def _stability_rows(stability):
    """The summary's line on stability selection (none without it)."""
    if stability is None:
        return []
    rule = ("; features below %g dropped as unstable" % stability["min_stability"]
            if stability["min_stability"] is not None else "")
    return [("stability", "%d half-samples of %d row groups (complementary pairs) at the "
             "chosen penalty: %s, %.1f s, %d of %d fits converged%s"
             % (stability["n_subsamples"], stability["groups"],
                count(stability["data_passes"], "data pass"), stability["seconds"],
                stability["converged"], stability["n_subsamples"], rule))]


def _unstable_section(document):
    """Dropped features that some half-samples selected, most often first."""
    chosen = sorted((d for d in document["dropped"] if d.get("stability")),
                    key=lambda d: (-d["stability"], d["name"]))[:TOP_FEATURES]
    if not chosen:
        return []
    return ["<h3>Dropped, but selected by some half-samples (%d shown)</h3>" % len(chosen),
            _table(["name", "reason", "stability"],
                   [(d["name"], d["reason"], "%.2f" % d["stability"]) for d in chosen],
                   numeric=(2,))]


def _score_rows(selection):
    """The summary's line on the CV score at the chosen and at the best point."""
    scores = selection.get("scores")
    if not scores:
        return []
    chosen, best = scores["chosen"], scores["best"]

    def pm(point):
        if point.get("mean") is None:
            return "n/a"
        return "%.5g \u00b1 %.2g" % (point["mean"], point.get("se") or 0.0)

    return [("CV %s" % selection["metric"],
             "%s at the chosen point; best %s at alpha = %.6g, l1_ratio = %g"
             % (pm(chosen), pm(best), best["alpha"], best["l1_ratio"]))]


def _norm(value):
    """A number, or the norm of a list of them (a categorical column's levels)."""
    return math.hypot(*value) if isinstance(value, list) else value


def _table(columns, rows, *, with_header=True, numeric=()):
    """An HTML table of escaped cells; ``numeric``: indices of right-aligned columns."""
    e = html.escape
    out = ["<table>"]
    if with_header:
        out.append("<tr>%s</tr>" % "".join("<th>%s</th>" % e(str(c)) for c in columns))
    for row in rows:
        out.append("<tr>%s</tr>" % "".join(
            '<td%s>%s</td>' % (' class="num"' if i in numeric else "", e(str(value)))
            for i, value in enumerate(row)))
    out.append("</table>")
    return "\n".join(out)
