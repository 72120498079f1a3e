"""Module boundaries of the package: no private imports across modules, no import cycles."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "xnowcast"


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = ast.parse(path.read_text(), str(path))
    return out


def _imports(tree: ast.Module, top_level_only: bool):
    """``(module, names)`` of every ``import``/``from ... import`` (module level only if asked)."""
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []


def test_no_private_names_are_imported_across_modules():
    modules = _modules()
    found = [
        f"{name} imports {target}.{item}"
        for name, tree in modules.items()
        for target, items in _imports(tree, top_level_only=False)
        if target.startswith("xnowcast")
        for item in items
        if item.startswith("_") and not item.startswith("__") and target != name
    ]
    assert not found, "private names imported across modules:\n" + "\n".join(found)


def _edges(modules: dict[str, ast.Module]) -> dict[str, set[str]]:
    """Module-level imports between package modules (what runs at import time)."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, tree in modules.items():
        for target, items in _imports(tree, top_level_only=True):
            if not target.startswith("xnowcast"):
                continue
            # ``from pkg import sub`` imports the submodule ``pkg.sub``.
            subs = [f"{target}.{item}" for item in items if f"{target}.{item}" in modules]
            for dep in subs or [target]:
                if dep in modules and dep != name:
                    graph[name].add(dep)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            # A package's __init__ importing its own submodules is how packages re-export.
            if node.startswith(dep + "."):
                continue
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycles_between_modules():
    cycle = _cycle(_edges(_modules()))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
