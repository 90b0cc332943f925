"""The report's figures read at 50 and at 500 selected features, checked as images."""
from __future__ import annotations

import numpy as np
import pytest

from elasticnet_dist.cli import EXIT_OK, main
from elasticnet_dist.datasets import make_wide_table, write_parquet
from elasticnet_dist.report import LABELLED_PATHS, OTHER_PATHS

pytest.importorskip("matplotlib")


def _pixels(path, rgb, tol=0.02):
    """How many pixels of the PNG at ``path`` have the colour ``rgb`` (0..1)."""
    import matplotlib.image

    image = matplotlib.image.imread(str(path))[..., :3]
    return int(np.sum(np.all(np.abs(image - np.asarray(rgb)) < tol, axis=-1)))


def _hex(colour):
    from matplotlib.colors import to_rgb

    return to_rgb(colour)


@pytest.fixture(scope="module", params=[25, 500], ids=["25 informative", "500 informative"])
def report(request, tmp_path_factory):
    informative = request.param
    root = tmp_path_factory.mktemp("figures")
    table = make_wide_table(3 * informative + 600, informative + 100, informative, seed=2)
    path = write_parquet(table, str(root / "table"), n_files=2)
    assert main(["select", "--input", path, "--label", "y", "--output", str(root / "out"),
                 "--engine", "local", "--n-alphas", "40"]) == EXIT_OK
    import json

    return root / "out", json.loads((root / "out" / "manifest.json").read_text())


def test_the_path_names_the_largest_and_greys_the_rest(report):
    out, manifest = report
    n = len(manifest["selected"])
    grey = _pixels(out / "path.png", _hex(OTHER_PATHS))
    if n > LABELLED_PATHS:
        assert grey > 500, grey  # the others are drawn, in grey
    else:
        assert grey < 50, grey
    # each named feature's colour is on the figure (its line and legend entry)
    from matplotlib import colormaps

    for colour in colormaps["tab10"].colors[:min(n, LABELLED_PATHS)]:
        if abs(colour[0] - colour[1]) < 0.05 and abs(colour[1] - colour[2]) < 0.05:
            continue  # tab10's grey is never used
        assert _pixels(out / "path.png", colour, tol=0.03) > 20, colour


def test_the_cv_curve_marks_the_best_and_the_chosen_point_in_both_panels(report):
    import matplotlib.image

    out, manifest = report
    image = matplotlib.image.imread(str(out / "cv_curve.png"))
    assert image.shape[1] == 1200  # two panels of 6 inches at 100 dpi
    half = image.shape[1] // 2
    gold, crimson = _hex("gold"), _hex("crimson")
    for panel in (image[:, :half, :3], image[:, half:, :3]):
        assert np.sum(np.all(np.abs(panel - gold) < 0.02, axis=-1)) > 10
        assert np.sum(np.all(np.abs(panel - crimson) < 0.02, axis=-1)) > 10
    page = (out / "report.html").read_text()
    scores = manifest["selection"]["scores"]
    assert "%.5g" % scores["chosen"]["mean"] in page and "%.5g" % scores["best"]["mean"] in page
