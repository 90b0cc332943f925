"""The stage's configuration: defaults, conf/*.yaml, layering and errors that name the key."""
import pathlib
import re

import pytest
import yaml

from elasticnet_dist import config as cfg
from elasticnet_dist.cli import build_parser, flags_layer
from elasticnet_dist.errors import ConfigError

CONF = pathlib.Path(__file__).resolve().parents[1] / "conf"


def test_default_yaml_is_the_spec_and_documents_every_key():
    text = (CONF / "default.yaml").read_text()
    assert yaml.safe_load(text) == cfg.defaults()
    lines = text.splitlines()
    for section, keys in cfg.SPEC.items():
        for key in keys:
            i = lines.index("  %s: %s" % (key, _dump(cfg.SPEC[section][key].default)))
            assert lines[i - 1].lstrip().startswith("#"), key  # a comment right above


def _dump(value):
    return yaml.safe_dump(value, default_flow_style=True).replace("\n...", "").strip()


@pytest.mark.parametrize("name", ["local.yaml", "dask-cluster.yaml", "spark-cluster.yaml"])
def test_shipped_configs_resolve(name):
    config = cfg.resolve([CONF / name])
    expected = {"local.yaml": "local", "dask-cluster.yaml": "dask",
                "spark-cluster.yaml": "spark"}[name]
    assert config["engine"]["name"] == expected
    if expected == "dask":
        assert config["engine"]["scheduler"].startswith("tcp://")
    if expected == "spark":
        assert config["engine"]["master"].startswith("spark://")
        assert config["engine"]["spark_conf"]["spark.executor.memory"] == "8g"


@pytest.mark.parametrize("text, words", [
    ("serach: {cv: 3}", ["unknown section 'serach'", "did you mean 'search'"]),
    ("search: {folds: 3}", ["unknown key search.folds", "allowed keys of 'search'", "cv"]),
    ("search: {selection: best}", ["bad value 'best' for search.selection", "'min' or '1se'"]),
    ("search: {cv: 1}", ["search.cv", "an integer >= 2"]),
    ("search: {l1_ratios: [0.5, 2]}", ["search.l1_ratios", "numbers in [0, 1]"]),
    ("model: {tol: 0}", ["model.tol", "> 0"]),
    ("model: {fit_intercept: 'yes'}", ["model.fit_intercept", "true or false"]),
    ("engine: {name: ray}", ["engine.name", "'local' or 'dask' or 'spark'"]),
    ("engine: {name: local, scheduler: 'tcp://h:8786'}", ["engine.scheduler", "engine.name"]),
    ("model: {loss: squared}\nsearch: {scoring: auc}", ["search.scoring", "allowed: mse"]),
    ("- just a list", ["must be a mapping of sections"]),
    ("search: [1, 2]", ["section 'search'", "must be a mapping"]),
])
def test_bad_config_names_the_key_and_what_is_allowed(tmp_path, text, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        cfg.resolve([path])
    for w in words:
        assert w in str(err.value)
    if "mapping of sections" not in words[0] and "scheduler" not in text \
            and "scoring" not in text:
        assert str(path) in str(err.value)  # the file at fault


def test_unreadable_or_invalid_yaml_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the config file"):
        cfg.resolve([tmp_path / "missing.yaml"])
    broken = tmp_path / "broken.yaml"
    broken.write_text("search: {cv: [")
    with pytest.raises(ConfigError, match="not valid YAML"):
        cfg.resolve([broken])
    evil = tmp_path / "evil.yaml"
    evil.write_text("search: !!python/object/apply:os.system ['true']")
    with pytest.raises(ConfigError, match="not valid YAML"):  # safe_load: no Python objects
        cfg.resolve([evil])


def test_layers_flags_over_files_over_defaults(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("search: {cv: 3, n_alphas: 50}\nmodel: {loss: logistic}\n")
    b.write_text("search: {cv: 4}\n")
    args = build_parser().parse_args(["select", "--config", str(a), "--config", str(b),
                                      "--n-alphas", "20", "--l1-ratios", "0.2,1"])
    config = cfg.resolve(args.config, flags_layer(args))
    assert config["search"]["cv"] == 4            # the later file
    assert config["search"]["n_alphas"] == 20     # the flag
    assert config["search"]["l1_ratios"] == [0.2, 1.0]
    assert config["model"]["loss"] == "logistic"  # the first file
    assert config["search"]["selection"] == cfg.SPEC["search"]["selection"].default


def test_an_address_picks_its_engine_unless_the_engine_is_given():
    parse = build_parser().parse_args
    assert cfg.resolve([], flags_layer(parse(["select", "--master", "local[2]"])))[
        "engine"]["name"] == "spark"
    assert cfg.resolve([], flags_layer(parse(["select", "--scheduler", "tcp://h:1"])))[
        "engine"]["name"] == "dask"
    with pytest.raises(ConfigError, match="engine.master"):
        cfg.resolve([], flags_layer(parse(["select", "--master", "x", "--engine", "dask"])))


def test_required_keys_name_their_flag():
    with pytest.raises(ConfigError, match=re.escape("input.label is required (flag --label")):
        cfg.require(cfg.defaults() | {"input": {**cfg.defaults()["input"], "path": "t"}},
                    "input.path", "input.label")
