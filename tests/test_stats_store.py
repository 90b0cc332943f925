"""The statistics store: a rerun reads only the files it has not seen, and its
numbers are a cold run's, bit for bit (elasticnet_dist.stats_store)."""
from __future__ import annotations

import io
import json
import os
import shutil

import numpy as np
import pytest

from conftest import run_cli
from elasticnet_dist import ElasticNet, ElasticNetCV
from elasticnet_dist.cli import EXIT_CONFIG, EXIT_OK
from elasticnet_dist.datasets import make_wide_table, write_parquet
from elasticnet_dist.io.blocks import BlockDecoder
from elasticnet_dist.manifest import check_manifest
from elasticnet_dist.stats_store import (FORMAT, decode_summary, encode_summary, pack_stats,
                                         read_leaf, unpack_stats, write_leaf)

N_FILES = 6
CV = dict(l1_ratio=[0.5, 1.0], cv=4, alphas=30)


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """Six Parquet files of one table (1,200 x 40, squared loss), to copy from."""
    root = tmp_path_factory.mktemp("parts")
    table = make_wide_table(1200, 40, n_informative=6, seed=11)
    return write_parquet(table, str(root / "all"), n_files=N_FILES)


def _table(parts, folder, names):
    os.makedirs(folder, exist_ok=True)
    for name in names:
        shutil.copy2(os.path.join(parts, name), os.path.join(folder, name))
    return str(folder)


def _names(k):
    return ["part-%05d.parquet" % i for i in range(k)]


@pytest.fixture
def decodes(monkeypatch):
    """The pieces decoded in this process (their names), in order."""
    seen = []
    original = BlockDecoder.decode

    def counting(self, table, name, *args, **kwargs):
        seen.append(os.path.basename(name))
        return original(self, table, name, *args, **kwargs)

    monkeypatch.setattr(BlockDecoder, "decode", counting)
    return seen


def _same_fit(a, b):
    """Bit-identical models and CV curves."""
    assert np.array_equal(a.coef_, b.coef_) and a.intercept_ == b.intercept_
    assert a.alpha_ == b.alpha_ and a.l1_ratio_ == b.l1_ratio_
    for key, value in a.cv_results_.items():
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            assert np.array_equal(value, b.cv_results_[key], equal_nan=True), key


def test_a_rerun_reads_only_the_new_file_and_matches_a_cold_run_bit_for_bit(
        parts, tmp_path, decodes):
    table = _table(parts, tmp_path / "t", _names(N_FILES - 1))
    store = str(tmp_path / "store")
    first = ElasticNetCV(**CV, stats_store=store).fit(table, label="y")
    assert first.fit_report_["source"]["stats_store"]["pieces_decoded"] == N_FILES - 1
    assert first.fit_report_["route"] == "gram"
    _table(parts, tmp_path / "t", _names(N_FILES)[-1:])  # a day's new file arrives
    decodes.clear()
    again = ElasticNetCV(**CV, stats_store=store).fit(table, label="y")
    assert decodes == ["part-%05d.parquet" % (N_FILES - 1)]  # the new file alone was read
    assert again.fit_report_["source"]["stats_store"] == {
        "uri": store, "pieces_from_store": N_FILES - 1, "pieces_decoded": 1}
    cold = ElasticNetCV(**CV).fit(table, label="y")
    _same_fit(again, cold)
    assert again.n_passes_ == cold.n_passes_ == 1
    # a third run reads nothing at all, and still gives the same bits
    decodes.clear()
    third = ElasticNetCV(**CV, stats_store=store).fit(table, label="y")
    assert decodes == []
    _same_fit(third, cold)


def test_files_rewritten_or_removed_are_read_again_or_dropped_from_the_store(
        parts, tmp_path, decodes):
    table = _table(parts, tmp_path / "t", _names(N_FILES))
    store = tmp_path / "store"
    ElasticNetCV(**CV, stats_store=str(store)).fit(table, label="y")
    context, = os.listdir(store / FORMAT)
    files = lambda: sorted(os.listdir(store / FORMAT / context))  # noqa: E731
    # context.json, shift.npz; a summary and a leaf per piece; the node of their group
    assert len(files()) == 2 + 2 * N_FILES + 1
    # a file rewritten in place (other rows, same name): a new piece, read again
    other = make_wide_table(200, 40, n_informative=6, seed=99)
    write_parquet(other, str(tmp_path / "other"), n_files=1)
    shutil.copy(tmp_path / "other" / "part-00000.parquet", os.path.join(table, _names(3)[2]))
    decodes.clear()
    rewritten = ElasticNetCV(**CV, stats_store=str(store)).fit(table, label="y")
    assert decodes == [_names(3)[2]]
    _same_fit(rewritten, ElasticNetCV(**CV).fit(table, label="y"))
    assert len(files()) == 2 + 2 * N_FILES + 1  # the old version's entries were pruned
    (store / FORMAT / context / "stray").write_text("a file of no piece")
    (store / FORMAT / context / ".left.abc.tmp").write_text("a write cut short")
    # the first file removed: its entries go; the others come from the store, summed
    # about the store's reference row (the same sums about another point)
    os.remove(os.path.join(table, _names(1)[0]))
    decodes.clear()
    shorter = ElasticNetCV(**CV, stats_store=str(store)).fit(table, label="y")
    assert decodes == []
    assert len(files()) == 2 + 2 * (N_FILES - 1) + 1
    cold = ElasticNetCV(**CV).fit(table, label="y")
    np.testing.assert_allclose(shorter.coef_, cold.coef_, rtol=1e-9, atol=1e-12)
    assert shorter.alpha_ == cold.alpha_


def test_another_configuration_misses_the_store_and_replaces_its_entries(parts, tmp_path,
                                                                         decodes):
    table = _table(parts, tmp_path / "t", _names(N_FILES))
    store = tmp_path / "store"
    ElasticNetCV(**CV, stats_store=str(store)).fit(table, label="y")
    before, = os.listdir(store / FORMAT)
    decodes.clear()
    five = ElasticNetCV(**{**CV, "cv": 5}, stats_store=str(store)).fit(
        table, label="y", exclude=["f0000"])
    assert len(decodes) == N_FILES  # other folds and columns: every piece read
    after, = os.listdir(store / FORMAT)
    assert after != before  # the unused context was removed
    _same_fit(five, ElasticNetCV(**{**CV, "cv": 5}).fit(table, label="y", exclude=["f0000"]))


def test_passes_the_store_does_not_hold_read_each_piece_once_and_stay_exact(parts, tmp_path,
                                                                             decodes):
    """A single fit on the pass route asks the stand-ins for points' sums: each decodes
    its piece on the first such pass and keeps the rows for the others."""
    table = _table(parts, tmp_path / "t", _names(N_FILES))
    store = str(tmp_path / "store")
    kw = dict(alpha=0.05, l1_ratio=0.7, solver="newton")
    ElasticNet(**kw, stats_store=store).fit(table, label="y")
    decodes.clear()
    again = ElasticNet(**kw, stats_store=store).fit(table, label="y")
    assert again.fit_report_["source"]["stats_store"]["pieces_from_store"] == N_FILES
    assert again.n_passes_ > 2 and sorted(decodes) == _names(N_FILES)  # once each
    cold = ElasticNet(**kw).fit(table, label="y")
    assert np.array_equal(again.coef_, cold.coef_) and again.n_passes_ == cold.n_passes_


def test_losses_without_a_one_pass_route_leave_the_store_alone(tmp_path, caplog):
    t = make_wide_table(600, 12, n_informative=3, seed=4, loss="logistic")
    table = write_parquet(t, str(tmp_path / "t"), n_files=3)
    with caplog.at_level("INFO", logger="elasticnet_dist"):
        fit = ElasticNetCV(cv=3, alphas=10, loss="logistic",
                           stats_store=str(tmp_path / "store")).fit(table, label="y")
    assert "statistics store: not used for the logistic loss" in caplog.text
    assert "stats_store" not in fit.fit_report_["source"]
    assert not (tmp_path / "store").exists()


def test_a_damaged_store_file_is_computed_again(parts, tmp_path, caplog):
    table = _table(parts, tmp_path / "t", _names(N_FILES))
    store = tmp_path / "store"
    ElasticNetCV(**CV, stats_store=str(store)).fit(table, label="y")
    context, = os.listdir(store / FORMAT)
    leaves = [name for name in os.listdir(store / FORMAT / context) if name.endswith(".leaf")]
    for leaf in leaves:  # the pieces' and their group's: the node, then each piece
        (store / FORMAT / context / leaf).write_bytes(b"not an npz file")
    with caplog.at_level("WARNING", logger="elasticnet_dist"):
        again = ElasticNetCV(**CV, stats_store=str(store)).fit(table, label="y")
    assert len(leaves) == N_FILES + 1 and "is unreadable" in caplog.text
    assert all(leaf in caplog.text for leaf in leaves)
    _same_fit(again, ElasticNetCV(**CV).fit(table, label="y"))


def test_summaries_and_leaves_round_trip_exactly(parts):
    from elasticnet_dist.io.table import open_table

    piece = open_table(parts).pieces[0]
    decoder = BlockDecoder(tuple("f%04d" % j for j in range(40)), "y", n_folds=4,
                           collect_hashes=True, strata=None)
    block = decoder.load(piece)
    again = decode_summary(encode_summary(block.summary))
    for name, value in vars(block.summary).items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(value, getattr(again, name), equal_nan=True), name
        elif name != "extra":
            assert value == getattr(again, name) or (value != value), name
    rng = np.random.default_rng(0)
    stats = {"gram_lower": rng.normal(size=(3, 15)), "sx": rng.normal(size=(3, 5)),
             "sy": np.float64(2.5), "gram": rng.normal(size=(4, 4))}
    buffer = io.BytesIO()
    write_leaf(buffer, pack_stats(stats))
    out = unpack_stats(read_leaf(buffer.getvalue()))
    assert out.keys() == stats.keys() and all(np.array_equal(out[k], stats[k]) for k in stats)
    assert unpack_stats(pack_stats(None)) is None


def test_a_store_of_an_older_layout_is_removed_after_a_run(parts, tmp_path):
    table = _table(parts, tmp_path / "t", _names(2))
    store = tmp_path / "store"
    (store / "v1" / "somecontext").mkdir(parents=True)
    (store / "v1" / "somecontext" / "a.b.leaf").write_bytes(b"squares")
    (store / "mine").mkdir()  # not a layout's folder: left alone
    ElasticNetCV(**CV, stats_store=str(store)).fit(table, label="y")
    assert sorted(os.listdir(store)) == sorted(["mine", FORMAT])


@pytest.mark.cluster  # whole-stage runs in processes of their own
def test_the_stage_reruns_from_the_store_with_the_same_manifest(parts, tmp_path):
    table = _table(parts, tmp_path / "t", _names(N_FILES - 1))
    store = tmp_path / "store"
    args = ["select", "--input", table, "--label", "y", "--engine", "local", "--n-alphas",
            "30", "--l1-ratios", "0.5,1", "--cv", "4", "--no-report", "--stats-store", store]
    assert run_cli(*args, "--output", tmp_path / "a").returncode == EXIT_OK
    _table(parts, tmp_path / "t", _names(N_FILES)[-1:])
    run = run_cli(*args, "--output", tmp_path / "b")
    assert run.returncode == EXIT_OK, run.stderr
    assert "5 of 6 pieces from the store, 1 decoded" in run.stderr
    cold = run_cli(*args[:-2], "--output", tmp_path / "c")
    assert cold.returncode == EXIT_OK, cold.stderr
    b, c = (json.loads((tmp_path / d / "manifest.json").read_text()) for d in "bc")
    check_manifest(b)
    check_manifest(dict(c, schema_version="1.1"))  # a manifest of 1.1 still validates
    assert b["input"]["stats_store"]["pieces_from_store"] == 5 and "stats_store" not in c["input"]
    for key in ("selected", "dropped", "penalty", "intercept", "reduced_schema", "selection"):
        assert b[key] == c[key], key
    # the store may not live inside the table (it would be read as part of it)
    inside = run_cli(*args[:-1], os.path.join(table, "store"), "--output", tmp_path / "d")
    assert inside.returncode == EXIT_CONFIG and "output.stats_store" in inside.stderr


@pytest.mark.parametrize("engine", ["dask", "spark"])
def test_cluster_engines_rerun_from_the_store_bit_for_bit(parts, tmp_path, engine, request):
    client = request.getfixturevalue("dask_client" if engine == "dask" else "spark")
    kw = dict(CV, engine=engine, cluster=client if engine == "dask" else None)
    table = _table(parts, tmp_path / "t", _names(N_FILES - 1))
    store = str(tmp_path / "store")
    ElasticNetCV(**kw, stats_store=store).fit(table, label="y")
    _table(parts, tmp_path / "t", _names(N_FILES)[-1:])
    again = ElasticNetCV(**kw, stats_store=store).fit(table, label="y")
    assert again.fit_report_["source"]["stats_store"]["pieces_from_store"] == N_FILES - 1
    _same_fit(again, ElasticNetCV(**kw).fit(table, label="y"))
    _same_fit(again, ElasticNetCV(**CV).fit(table, label="y"))  # and the local engine's


@pytest.fixture(scope="module")
def many_parts(tmp_path_factory):
    """17 Parquet files of one table (1,700 x 480): each piece's per-fold Gram sums
    (3.7 MB of triangles with 4 folds) make the statistics pass a large one, which
    every engine merges in the tree's level-1 nodes where the blocks are."""
    root = tmp_path_factory.mktemp("many")
    table = make_wide_table(1700, 480, n_informative=6, seed=12)
    return write_parquet(table, str(root / "all"), n_files=17)


def _store_files(store):
    """The store's piece leaves (of a piece with a summary) and node leaves."""
    context, = os.listdir(store / FORMAT)
    folder = store / FORMAT / context
    names = os.listdir(folder)
    pieces = {name.split(".")[0] for name in names if name.endswith(".summary.npz")}
    leaves = [folder / name for name in names if name.endswith(".leaf")]
    return ([leaf for leaf in leaves if leaf.name.split(".")[0] in pieces],
            [leaf for leaf in leaves if leaf.name.split(".")[0] not in pieces])


@pytest.mark.parametrize("engine", ["local", "dask", "spark"])
def test_a_rerun_maps_whole_groups_of_pieces_from_the_store(many_parts, tmp_path, engine,
                                                            request, decodes):
    """The merge tree's level-1 nodes (groups of 8 consecutive pieces) are stored
    too: a rerun over the same 16 pieces and a new one maps 2 nodes and computes 1
    leaf, instead of mapping 16 leaves and adding them again, bit for bit."""
    cluster = {"local": None, "dask": "dask_client", "spark": "spark"}[engine]
    client = request.getfixturevalue(cluster) if cluster else None
    kw = dict(CV, engine=engine, cluster=client if engine == "dask" else None)
    table = _table(many_parts, tmp_path / "t", _names(16))
    store = tmp_path / "store"
    ElasticNetCV(**kw, stats_store=str(store)).fit(table, label="y")
    leaves, nodes = _store_files(store)
    assert len(leaves) == 16 and len(nodes) == 2
    old = {leaf.name.split(".")[0] for leaf in leaves}
    for leaf in leaves:  # a rerun that needed a piece's leaf would compute and write it
        leaf.unlink()
    _table(many_parts, tmp_path / "t", _names(17)[-1:])
    decodes.clear()
    again = ElasticNetCV(**kw, stats_store=str(store)).fit(table, label="y")
    leaves, nodes_after = _store_files(store)
    assert len(leaves) == 1 and leaves[0].name.split(".")[0] not in old  # the new piece's
    assert sorted(nodes_after) == sorted(nodes)  # its group of one has no node
    if engine == "local":
        assert decodes == ["part-00016.parquet"]
    _same_fit(again, ElasticNetCV(**kw).fit(table, label="y"))


def test_keys_see_every_number_of_a_long_shift():
    from elasticnet_dist.passes import PassRequest
    from elasticnet_dist.stats_store import request_key

    shift = np.arange(5000, dtype=np.float64)  # repr() would elide its middle
    other = shift.copy()
    other[2500] += 1e-9
    a, b = (request_key(PassRequest(moments=True, shift_x=x)) for x in (shift, other))
    assert a != b and a == request_key(PassRequest(moments=True, shift_x=shift.copy()))


def test_a_store_that_cannot_be_written_costs_the_reuse_not_the_fit(parts, tmp_path, caplog):
    table = _table(parts, tmp_path / "t", _names(3))
    store = tmp_path / "store"
    store.mkdir()
    (store / FORMAT).write_text("a file where the store's folder should be")
    with caplog.at_level("WARNING", logger="elasticnet_dist"):
        fit = ElasticNetCV(**CV, stats_store=str(store)).fit(table, label="y")
    assert "cannot write" in caplog.text
    _same_fit(fit, ElasticNetCV(**CV).fit(table, label="y"))


def test_stability_selection_reads_its_row_groups_from_the_store_too(parts, tmp_path,
                                                                     decodes):
    table = _table(parts, tmp_path / "t", _names(N_FILES))
    kw = dict(CV, stability=4, stability_groups=4)
    first = ElasticNetCV(**kw, stats_store=str(tmp_path / "store")).fit(table, label="y")
    decodes.clear()
    again = ElasticNetCV(**kw, stats_store=str(tmp_path / "store")).fit(table, label="y")
    assert decodes == []  # neither the folds' nor the groups' load read a file
    assert np.array_equal(again.stability_, first.stability_)
    assert len(os.listdir(tmp_path / "store" / FORMAT)) == 2  # the folds' and the groups'


def test_pieces_without_a_version_are_read_every_run(parts, tmp_path, caplog):
    """A piece whose file system tells no size and version gets no key (and no node of
    a group with it): a warning names it, and the other pieces keep theirs."""
    from types import SimpleNamespace

    from elasticnet_dist.io.table import open_table
    from elasticnet_dist.stats_store import StatsStore, node_keys

    pieces = list(open_table(parts).pieces[:3])
    pieces.insert(1, SimpleNamespace(name="in-memory slice"))  # no file at all
    store = StatsStore(str(tmp_path / "store"))
    decoder = BlockDecoder(tuple("f%04d" % j for j in range(40)), "y", n_folds=4)
    with caplog.at_level("WARNING", logger="elasticnet_dist"):
        attached = store.attach(decoder, pieces)
    assert "1 pieces have no size and version" in caplog.text and "in-memory slice" in caplog.text
    keys = [attached.store.key_of(piece) for piece in pieces]
    assert keys[1] is None and all(key is not None for key in keys[:1] + keys[2:])
    assert store.current == set(keys[:1] + keys[2:])  # no node: its group has the slice
    assert node_keys(keys) == [] and len(node_keys(keys[:1] + keys[2:])) == 1
