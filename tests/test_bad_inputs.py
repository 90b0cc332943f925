"""A corpus of broken inputs and configurations for ``elasticnet-dist select``.

Each case ends with its documented exit code, a one-line message that names the
culprit (column, file, key or value), no traceback, no new manifest, and an
earlier manifest left byte for byte as it was (and no temporary file beside it)."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from elasticnet_dist.cli import EXIT_CONFIG, EXIT_INPUT, EXIT_OK, main
from test_stage import FAST, write_table


def _table(folder, **columns):
    """A one-file table: x0..x4 standard normal, y, and ``columns`` overriding any."""
    rng = np.random.default_rng(3)
    n = 120
    cols = {"x%d" % j: rng.standard_normal(n) for j in range(5)}
    cols["y"] = cols["x0"] + rng.standard_normal(n)
    cols.update(columns)
    os.makedirs(folder, exist_ok=True)
    pq.write_table(pa.table(cols), os.path.join(folder, "part-0.parquet"))
    return str(folder)


def _nan_at(values, i, value=np.nan):
    out = np.array(values, dtype=float)
    out[i] = value
    return out


# Each case: (id, make(tmp) -> (input path, extra flags), exit code, words in the message)
def case_missing_path(tmp):
    return str(tmp / "absent"), []


def case_empty_folder(tmp):
    os.makedirs(tmp / "empty")
    return str(tmp / "empty"), []


def case_corrupt_file(tmp):
    folder = tmp / "corrupt"
    write_table(folder, n_files=2)
    (folder / "part-1.parquet").write_bytes(b"PAR1 this is not a parquet file PAR1")
    return str(folder), []


def case_truncated_file(tmp):
    folder = tmp / "truncated"
    write_table(folder, n_files=2)
    data = (folder / "part-0.parquet").read_bytes()
    (folder / "part-0.parquet").write_bytes(data[: len(data) // 2])
    return str(folder), []


def case_zero_rows(tmp):
    folder = tmp / "zero"
    os.makedirs(folder)
    pq.write_table(pa.table({"x0": pa.array([], pa.float64()), "y": pa.array([], pa.float64())}),
                   folder / "part-0.parquet")
    return str(folder), []


def case_label_missing(tmp):
    return _table(tmp / "t"), ["--label", "target_that_is_absent"]


def case_label_strings(tmp):
    return _table(tmp / "t", y=pa.array(["a", "b"] * 60)), []


def case_logistic_labels_1_2(tmp):
    return _table(tmp / "t", y=np.tile([1.0, 2.0], 60)), ["--loss", "logistic"]


def case_logistic_one_class(tmp):
    return _table(tmp / "t", y=np.ones(120)), ["--loss", "logistic"]


def case_nan_in_feature(tmp):
    rng = np.random.default_rng(0)
    return _table(tmp / "t", x3=_nan_at(rng.standard_normal(120), 7)), []


def case_inf_in_feature(tmp):
    rng = np.random.default_rng(0)
    return _table(tmp / "t", x2=_nan_at(rng.standard_normal(120), 9, np.inf)), []


def case_nan_in_label(tmp):
    rng = np.random.default_rng(0)
    return _table(tmp / "t", y=_nan_at(rng.standard_normal(120), 4)), []


def case_type_drift_between_files(tmp):
    folder = tmp / "drift"
    write_table(folder, n_files=2)
    part = pq.read_table(folder / "part-1.parquet")
    i = part.schema.get_field_index("x05")
    part = part.set_column(i, "x05", pa.array(["s"] * part.num_rows))
    pq.write_table(part, folder / "part-1.parquet")
    return str(folder), []


def case_column_missing_in_one_file(tmp):
    folder = tmp / "drift"
    write_table(folder, n_files=2)
    part = pq.read_table(folder / "part-1.parquet")
    pq.write_table(part.drop_columns(["x09"]), folder / "part-1.parquet")
    return str(folder), []


def case_negative_weight(tmp):
    return _table(tmp / "t", w=np.r_[np.ones(119), -1.0]), ["--weight", "w"]


def case_weight_missing(tmp):
    return _table(tmp / "t"), ["--weight", "wt_absent"]


def case_all_zero_weights(tmp):
    return _table(tmp / "t", w=np.zeros(120)), ["--weight", "w"]


def case_features_match_nothing(tmp):
    return _table(tmp / "t"), ["--features", "gene_*"]


def case_key_missing(tmp):
    return _table(tmp / "t"), ["--keys", "customer_id"]


def case_fold_column_out_of_range(tmp):
    conf = tmp / "folds.yaml"
    conf.write_text("input:\n  fold_column: fold\n")
    return _table(tmp / "t", fold=np.tile(np.arange(7), 18)[:120]), ["--config", str(conf)]


def case_unknown_protocol(tmp):
    return "nosuchfs://bucket/table", []


def flags(*extra):
    return lambda tmp: (_table(tmp / "t"), list(extra))


def config_file(text):
    def make(tmp):
        conf = tmp / "conf.yaml"
        conf.write_text(text)
        return _table(tmp / "t"), ["--config", str(conf)]
    return make


CASES = [
    ("missing path", case_missing_path, EXIT_INPUT, "absent"),
    ("empty folder", case_empty_folder, EXIT_INPUT, "empty"),
    ("corrupt file", case_corrupt_file, EXIT_INPUT, "part-1.parquet"),
    ("truncated file", case_truncated_file, EXIT_INPUT, "part-0.parquet"),
    ("zero rows", case_zero_rows, EXIT_INPUT, "rows"),
    ("label missing", case_label_missing, EXIT_INPUT, "target_that_is_absent"),
    ("label of strings", case_label_strings, EXIT_INPUT, "'y'"),
    ("logistic labels 1/2", case_logistic_labels_1_2, EXIT_INPUT, "0 and 1"),
    ("logistic one class", case_logistic_one_class, EXIT_INPUT, "class"),
    ("NaN in a feature", case_nan_in_feature, EXIT_INPUT, "x3"),
    ("inf in a feature", case_inf_in_feature, EXIT_INPUT, "x2"),
    ("NaN in the label", case_nan_in_label, EXIT_INPUT, "'y'"),
    ("type drift between files", case_type_drift_between_files, EXIT_INPUT, "x05"),
    ("column missing in one file", case_column_missing_in_one_file, EXIT_INPUT, "x09"),
    ("negative weight", case_negative_weight, EXIT_INPUT, "'w'"),
    ("weight column missing", case_weight_missing, EXIT_INPUT, "wt_absent"),
    ("all weights zero", case_all_zero_weights, EXIT_INPUT, "'w'"),
    ("features match nothing", case_features_match_nothing, EXIT_INPUT, "gene_*"),
    ("key column missing", case_key_missing, EXIT_INPUT, "customer_id"),
    ("fold numbers out of range", case_fold_column_out_of_range, EXIT_INPUT, "fold"),
    ("unknown URL protocol", case_unknown_protocol, EXIT_INPUT, "nosuchfs"),
    ("negative alpha", flags("--alpha", "-1"), EXIT_CONFIG, "penalty.alpha"),
    ("l1_ratio above 1", flags("--alpha", "0.1", "--l1-ratio", "2"), EXIT_CONFIG,
     "penalty.l1_ratio"),
    ("one fold", flags("--cv", "1"), EXIT_CONFIG, "search.cv"),
    ("zero alphas", flags("--n-alphas", "0"), EXIT_CONFIG, "search.n_alphas"),
    ("zero tolerance", flags("--tol", "0"), EXIT_CONFIG, "model.tol"),
    ("huge max_features below 1", flags("--max-features", "-5"), EXIT_CONFIG,
     "search.max_features"),
    ("unknown config key", config_file("search:\n  folds: 5\n"), EXIT_CONFIG, "search.folds"),
    ("unknown config section", config_file("solver:\n  name: x\n"), EXIT_CONFIG, "solver"),
    ("config not YAML", config_file("search: [unclosed\n"), EXIT_CONFIG, "not valid YAML"),
    ("config with a Python object tag",
     config_file("search: !!python/object/apply:os.system ['echo owned']\n"), EXIT_CONFIG,
     "conf.yaml"),
    ("config value of the wrong type", config_file("model:\n  max_iter: lots\n"), EXIT_CONFIG,
     "model.max_iter"),
    ("config file missing", lambda tmp: (_table(tmp / "t"), ["--config", str(tmp / "no.yaml")]),
     EXIT_CONFIG, "no.yaml"),
    ("fold column with a fixed alpha",
     config_file("input:\n  fold_column: x4\npenalty:\n  alpha: 0.1\n"), EXIT_CONFIG,
     "fold_column"),
    ("scheduler with the spark engine", flags("--engine", "spark", "--scheduler",
                                              "tcp://127.0.0.1:9"), EXIT_CONFIG,
     "engine.scheduler"),
]


@pytest.fixture(scope="module")
def earlier(tmp_path_factory):
    """An output folder holding the manifest of a successful run."""
    out = tmp_path_factory.mktemp("earlier")
    table = _table(out.parent / "good")
    assert main(["select", "--input", table, "--label", "y", "--output", str(out),
                 "--engine", "local", "--no-report", *FAST]) == EXIT_OK
    return out


@pytest.mark.parametrize("name, make, code, words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_named_and_leaves_the_earlier_manifest(name, make, code, words, earlier,
                                                            tmp_path, capsys):
    before = (earlier / "manifest.json").read_bytes()
    path, extra = make(tmp_path)
    args = ["--input", path, "--output", str(earlier), "--engine", "local", *FAST, *extra]
    if "--label" not in extra:
        args += ["--label", "y"]
    capsys.readouterr()
    assert main(["select", *args]) == code
    err = capsys.readouterr().err
    assert words in err, err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if "ERROR" in line]) == 1, err
    assert (earlier / "manifest.json").read_bytes() == before
    assert sorted(os.listdir(earlier)) == ["manifest.json"]
    fresh = tmp_path / "fresh-output"
    assert main(["select", *args[:2], "--output", str(fresh), *args[4:]]) == code
    assert not (fresh / "manifest.json").exists()
    shutil.rmtree(fresh, ignore_errors=True)


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 25
