"""The package's layering (docs/architecture.md): imports point downward only, no module imports
another that (directly or through others) imports it back, and no module imports another's private names.

Every ``import`` statement counts, at module level or inside a function: a lazy import is still a
dependency. A new upward import or cycle fails here, on the laptop, before it tangles the package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "trustvl"

#: Layer of each top-level part of the package; a module may import its own part and lower layers only.
LAYERS: dict[str, int] = {
    "errors": 0,
    "utils": 1,
    "metrics": 2,
    "hub": 3,
    "modeling": 4,
    "data_builders": 5,
    "discovery": 6,
    "pipelines": 6,
    "testing": 6,
    "training": 7,
    "evaluation": 8,
    "jobs": 9,
    "commands": 10,
    "cli": 11,
}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in (SRC / PACKAGE).rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rsplit(".", 1)[0] if "." in name else ""
    return name or None


def _import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = module.split(".") if is_package else module.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            else:
                continue
            for target in targets:
                if target == PACKAGE or target.startswith(PACKAGE + "."):
                    resolved = _resolve(target, modules)
                    if resolved and resolved != module:
                        graph[module].add(resolved)
    return graph


def _part(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return components


def test_every_part_of_the_package_has_a_layer():
    parts = {_part(m) for m in _modules()} - {None}
    assert parts <= set(LAYERS), (
        f"add these parts to LAYERS (and docs/architecture.md): {parts - set(LAYERS)}"
    )


def test_no_import_cycles():
    cycles = _cycles(_import_graph())
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_imports_point_downward():
    upward = []
    for module, targets in _import_graph().items():
        source = _part(module)
        if source is None:
            continue
        for target in targets:
            dest = _part(target)
            if dest is None or dest == source:
                continue
            if LAYERS[dest] >= LAYERS[source]:
                upward.append(f"{module} -> {target}")
    assert not upward, "imports that do not point downward:\n" + "\n".join(sorted(upward))


# ---------------------------------------------------------------------------------------------- private names
#
# The rule: a name with a leading underscore (``_helper``) is private to the module that defines it, so
# ``from trustvl.a.b import _helper`` fails here, wherever it stands (another package or the same one); a
# helper that another module needs is made public (no underscore) or moved where both can use it.
# A private *module* (``_common.py``) is private to the package that holds it: modules of that package
# (and of its subpackages) may import it, ``from . import _mod`` included; a module outside it may not.
# Dunder names (``__version__``) are not private.

#: (importing module, private module) pairs allowed for now, each with its reason
PRIVATE_MODULE_EXCEPTIONS: dict[tuple[str, str], str] = {
    # the CLI entry point parses with the commands' shared helpers; it moves into trustvl.commands in the
    # re-layout of issue 22 (item 3), after which this entry goes
    ("trustvl.cli", "trustvl.commands._common"): "cli entry point, moves into commands (issue 22)",
}


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_imports() -> list[str]:
    """Every import of a private name from another module, or of a private module from outside its
    package, as ``"importer:line: what"``."""
    modules = _modules()
    found = []
    for module, path in sorted(modules.items()):
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = module.split(".") if is_package else module.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                paths = [f"{base}.{alias.name}" for alias in node.names]
                for alias in node.names:
                    if _is_private(alias.name) and f"{base}.{alias.name}" not in modules:
                        found.append(f"{module}:{node.lineno}: private name {alias.name} from {base}")
                paths.append(base)
            elif isinstance(node, ast.Import):
                paths = [alias.name for alias in node.names]
            else:
                continue
            for target in paths:
                if not target.startswith(PACKAGE + "."):
                    continue
                parts = target.split(".")
                for i, part in enumerate(parts):
                    owner = ".".join(parts[:i])
                    private_module = ".".join(parts[: i + 1])
                    if not _is_private(part) or private_module not in modules:
                        continue
                    inside = module == owner or module.startswith(owner + ".")
                    if not inside and (module, private_module) not in PRIVATE_MODULE_EXCEPTIONS:
                        found.append(f"{module}:{node.lineno}: private module {private_module}")
    return sorted(set(found))


def test_no_private_names_imported_from_other_modules():
    found = _private_imports()
    assert not found, (
        "private names imported from another module (make them public or move them):\n" + "\n".join(found)
    )


def test_private_module_exceptions_are_still_needed():
    modules = _modules()
    for importer, private_module in PRIVATE_MODULE_EXCEPTIONS:
        assert importer in modules and private_module in modules, (
            f"stale exception {importer} -> {private_module}"
        )
        graph = _import_graph()
        assert private_module in graph[importer], (
            f"{importer} no longer imports {private_module}: drop the entry"
        )


@pytest.mark.parametrize(
    "graph, expected",
    [
        ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ],
)
def test_cycle_finder_finds_cycles(graph, expected):
    assert _cycles(graph) == expected
