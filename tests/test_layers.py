"""The layers of DESIGN.md section 4, read from the import graph of the package.

- no module under ``solvers/`` imports an engine;
- no engine imports the loss, penalty, problem, kernel or solver modules (an engine
  maps a kernel it does not understand; :mod:`elasticnet_dist.reduction` adds the
  results and imports nothing of the problem either);
- io imports no engine, and neither drives one (:mod:`elasticnet_dist.loading` does);
- no code outside ``losses.py`` compares loss names.
"""
from __future__ import annotations

import ast
import pathlib
import re

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "elasticnet_dist"
PROBLEM = ("losses", "penalty", "problem", "passes", "sufficient", "sources", "solvers",
           "params")


def _module(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path):
    """Every elasticnet_dist module ``path`` imports (at any depth of the file)."""
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            names = [name] + ["%s.%s" % (name, a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found.update(n for n in names if n.startswith("elasticnet_dist"))
    return found


GRAPH = {_module(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def _under(name, prefixes):
    return any(name == "elasticnet_dist." + q or name.startswith("elasticnet_dist.%s." % q)
               for q in prefixes)


def _violations(importers, forbidden):
    return sorted("%s -> %s" % (module, dep) for module, deps in GRAPH.items()
                  if _under(module, importers) for dep in deps if _under(dep, forbidden))


def test_the_graph_was_read():
    assert "elasticnet_dist.engines.dask_engine" in GRAPH
    assert "elasticnet_dist.reduction" in GRAPH["elasticnet_dist.engines.dask_engine"]


@pytest.mark.parametrize("importers, forbidden", [
    (("solvers",), ("engines",)),
    (("engines",), PROBLEM),
    (("reduction",), PROBLEM + ("engines", "io")),
    (("io",), ("engines", "loading", "solvers", "estimators", "stage")),
    (("losses",), ("engines", "io", "solvers", "passes", "problem")),
], ids=["solvers import no engine", "engines import no problem", "reduction is domain-free",
        "io imports no engine", "losses stand alone"])
def test_layers(importers, forbidden):
    assert _violations(importers, forbidden) == []


def test_no_code_outside_the_loss_module_compares_loss_names():
    pattern = re.compile(r"""loss(_name)?\s*[!=]=|[!=]=\s*["'](squared|logistic)["']""")
    found = [f"{path.relative_to(PACKAGE)}:{i}: {line.strip()}"
             for path in PACKAGE.rglob("*.py") if path.name != "losses.py"
             for i, line in enumerate(path.read_text().splitlines(), 1)
             if pattern.search(line)]
    assert found == []
