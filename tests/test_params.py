"""One table of parameters: the estimators, the stage's configuration, the CLI and the
manifest schema all take their defaults, checks and choices from it."""
from __future__ import annotations

import inspect
import json
from importlib import resources

import pytest

from elasticnet_dist import ElasticNet, ElasticNetCV
from elasticnet_dist import config as cfg
from elasticnet_dist.cli import build_parser
from elasticnet_dist.engines import ENGINES
from elasticnet_dist.errors import ConfigError
from elasticnet_dist.losses import ALL_METRICS, LOSSES
from elasticnet_dist.params import PARAMS, PATH_MAX_ITER, STAGE_DIFFERENCES, check_value


def _estimator_defaults(cls):
    return {name: p.default for name, p in inspect.signature(cls).parameters.items()}


def test_every_configured_parameter_is_the_tables_option_with_the_stage_default():
    for param in PARAMS.values():
        if param.config is None:
            continue
        section, key = param.config.split(".")
        option = cfg.SPEC[section][key]
        assert option.default == param.stage, param.name
        assert option.allowed == param.rule.allowed, param.name
        assert option.doc.startswith(param.doc), param.name


def test_estimator_defaults_are_the_tables_and_differences_are_listed():
    for cls in (ElasticNet, ElasticNetCV):
        for name, default in _estimator_defaults(cls).items():
            if name not in PARAMS or (cls, name) == (ElasticNetCV, "n_alphas"):
                continue  # n_alphas: deprecated, its number is now alphas=int
            expected = PATH_MAX_ITER if (cls, name) == (ElasticNetCV, "max_iter") \
                else PARAMS[name].default
            assert default == expected, (cls.__name__, name)
    for name, (estimator, stage, why) in STAGE_DIFFERENCES.items():
        assert estimator != stage and len(why) > 20, name
    assert set(STAGE_DIFFERENCES) >= {"selection", "devmax", "fdev", "max_iter"}


# values each parameter must refuse, the same way everywhere
REFUSED = {"tol": [0, -1e-3, float("nan"), float("inf"), "1e-6"],
           "max_iter": [0, 2.5, True, 10**9], "n_alphas": [0, 1.5],
           "eps": [0, 1, 1.5], "cv": [1, 2.0], "l1_ratio": [-0.1, 1.1, float("nan")],
           "selection": ["best", None], "loss": ["hinge", None], "devmax": [1.5, -1],
           "fdev": [2], "fold_seed": [-1], "gram_max_features": [-1],
           "max_features": [0], "scoring": ["r2"], "screening": ["yes", 1]}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_the_estimators_and_the_config_refuse_the_same_values(name):
    param = PARAMS[name]
    section, key = param.config.split(".")
    for value in REFUSED[name]:
        with pytest.raises(ValueError, match=name):
            check_value(name, value)
        with pytest.raises(ConfigError, match="%s.%s" % (section, key)):
            cfg.merge(cfg.defaults(), {section: {key: value}}, "the test")
    stage = param.stage
    assert check_value(name, stage) == stage
    cfg.merge(cfg.defaults(), {section: {key: stage}}, "the test")


def test_an_estimator_refuses_what_the_config_refuses():
    with pytest.raises(ValueError, match="tol must be a number > 0, got 0"):
        ElasticNet(tol=0).fit([[0.0], [1.0], [2.0]], [0.0, 1.0, 3.0])
    with pytest.raises(ValueError, match="max_iter must be an integer >= 1"):
        ElasticNetCV(max_iter=0).fit([[0.0], [1.0], [2.0]] * 4, [0.0, 1.0, 3.0] * 4)


def test_cli_choices_come_from_the_table():
    parser = build_parser()
    select = parser._subparsers._group_actions[0].choices["select"]
    flags = {a.option_strings[0]: a for a in select._actions if a.option_strings}
    assert tuple(flags["--loss"].choices) == tuple(LOSSES)
    assert tuple(flags["--selection"].choices) == PARAMS["selection"].rule.values
    assert tuple(flags["--nan-policy"].choices) == PARAMS["nan_policy"].rule.values


def test_the_manifest_schema_enums_are_the_tables():
    schema = json.loads(resources.files("elasticnet_dist").joinpath(
        "schemas/manifest.schema.json").read_text())
    found, every = {}, []

    def walk(node, path=()):
        if isinstance(node, dict):
            if "enum" in node:
                found[path[-1]] = [v for v in node["enum"] if v is not None]
                every.append((path[-1], found[path[-1]]))
            for k, v in node.items():
                walk(v, path + (k,))
        elif isinstance(node, list):
            for v in node:
                walk(v, path)

    walk(schema)
    assert found["loss"] == list(LOSSES)
    assert found["rule"] == list(PARAMS["selection"].rule.values)
    assert found["metric"] == list(ALL_METRICS)
    assert found["nan_policy"] == list(PARAMS["nan_policy"].rule.values)
    assert ("name", list(ENGINES)) in every  # the engine's name
