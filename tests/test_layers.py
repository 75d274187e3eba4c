"""The layers: the core (baocao/) imports no stage, flow or application module; the stages
(tasks/) no flow or application; the flows no application. Imports inside functions count."""

from __future__ import annotations

import ast

import pytest

from baocao.settings import PROJECT_ROOT

LAYERS = ["baocao", "tasks", "flows", "app"]  # each may import only those before it


def _imports(path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_only_the_layers_below_it(layer):
    above = set(LAYERS[LAYERS.index(layer) + 1 :])
    wrong = {
        str(path.relative_to(PROJECT_ROOT)): sorted(_imports(path) & above)
        for path in sorted((PROJECT_ROOT / layer).glob("*.py"))
        if _imports(path) & above
    }
    assert wrong == {}


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from flows.common import start\n", encoding="utf-8")
    assert "flows" in _imports(module)
