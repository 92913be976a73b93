"""The layers hold: imports only go down, and no two packages import each other.

Every ``import`` and ``from ... import`` in platform_tools is read from the source (also
the ones inside functions, which run later but are dependencies all the same) and mapped
to its package. README's architecture section and platform_tools/__init__.py describe the
same table; a test checks they name every package.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

import platform_tools

pytestmark = pytest.mark.unit

ROOT = Path(platform_tools.__file__).parent
README = ROOT.parent / "README.md"

# Bottom to top. A package may import its own layer's packages (without a cycle) and any below.
LAYERS = {
    "config": 0,
    "contract": 1,
    "pricing": 1,
    "ledger": 1,
    "catalog": 1,
    "clients": 1,
    "local": 1,
    "archives": 1,
    "accounting": 2,
    "burst": 2,
    "classes": 2,
    "images": 2,
    "chart": 2,
    "hub": 3,
    "gateway": 3,
    "services": 3,
    "lab": 3,
    "cli": 4,
}
TOP = "platform_tools"  # the package itself: its __version__ only


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str | None = None) -> set[str]:
    """The platform_tools modules ``path`` (the module ``module``, by default the one at that
    place in the package) imports, absolute, wherever the import statement is."""
    module = module or _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
    return {name for name in found if name == TOP or name.startswith(TOP + ".")}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else TOP


def package_edges() -> dict[tuple[str, str], list[str]]:
    """(importer, imported) package pairs, each with the modules that make it."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(ROOT.rglob("*.py")):
        source = _unit(_module_name(path))
        for target in _imports(path):
            unit = _unit(target)
            if unit != source:
                edges[(source, unit)].append(f"{_module_name(path)} -> {target}")
    return edges


def test_every_package_has_a_layer():
    units = {_unit(_module_name(path)) for path in ROOT.rglob("*.py")} - {TOP}
    assert units == set(LAYERS), "add the new package to LAYERS (and README's architecture section)"


def test_imports_only_go_down():
    upward = [
        f"{source} (layer {LAYERS[source]}) imports {target} (layer {LAYERS[target]}): {why[0]}"
        for (source, target), why in package_edges().items()
        if target != TOP and LAYERS[target] > LAYERS[source]
    ]
    assert not upward, "\n".join(upward)


def test_no_two_packages_import_each_other():
    edges = package_edges()
    graph: dict[str, set[str]] = defaultdict(set)
    for source, target in edges:
        graph[source].add(target)

    def cycle_from(start: str) -> list[str] | None:
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    return [*path, start]
                if nxt not in path:
                    stack.append((nxt, [*path, nxt]))
        return None

    cycles = {tuple(c) for unit in LAYERS if (c := cycle_from(unit))}
    assert not cycles, "\n".join(
        " -> ".join(cycle) + "  (" + "; ".join(edges[(cycle[0], cycle[1])][:2]) + ")" for cycle in cycles
    )


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    """The walker must not miss an import inside a function or a relative one."""
    module = ROOT / "ledger" / "store.py"
    assert "platform_tools.ledger.schema" in _imports(module)
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from ..cli import main\n")
    assert "platform_tools.cli" in _imports(probe, "platform_tools.ledger.probe")


def test_readme_and_the_package_docstring_name_every_package():
    doc = platform_tools.__doc__ or ""
    section = README.read_text().split("## Architecture", 1)[-1].split("\n## ", 1)[0]
    for unit in LAYERS:
        assert re.search(rf"\b{unit}\b", doc), f"platform_tools/__init__.py does not name {unit}"
        assert re.search(rf"`{unit}`", section), f"README's architecture section does not name `{unit}`"


@pytest.mark.parametrize("unit", sorted(u for u in LAYERS if (ROOT / u).is_dir()))
def test_every_package_says_what_it_is(unit):
    init = ROOT / unit / "__init__.py"
    assert init.exists(), f"platform_tools/{unit} has no __init__.py"
    assert ast.get_docstring(ast.parse(init.read_text())), (
        f"platform_tools/{unit}/__init__.py has no docstring"
    )
