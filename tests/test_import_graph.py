"""Every import arrow between ``sapbert_st`` modules points one way: no import cycles.

Walks the ``ast`` of every module (top-level and function-level imports alike, since a
lazy import is still a dependency) and looks for a cycle in the module graph.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "sapbert_st"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The ``sapbert_st`` modules that ``path`` imports (``from a import b`` counts ``a.b``
    when ``a.b`` is a module, else ``a``)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imported_modules(p, modules) for p in paths}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def is_package_reexport(source: str, target: str) -> bool:
    """A package ``__init__`` re-exporting its own submodules is not an arrow up."""
    return target.startswith(source + ".")


def test_the_walker_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_walker_finds_real_imports():
    graph = import_graph()
    assert "sapbert_st.data.reading" in graph["sapbert_st.data.biosyn"]
    assert "sapbert_st.model" in graph["sapbert_st.cli.models"]


def test_no_import_cycles_in_sapbert_st():
    graph = import_graph()
    # a submodule importing its package's __init__ (which re-exports it) is the usual
    # Python layout; drop only those arrows from a package to its own submodules
    graph = {source: {t for t in targets if not is_package_reexport(source, t)}
             for source, targets in graph.items()}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_module_imports_private_names_of_another():
    """Modules share public functions only (the evaluator used ``_progress`` of the index)."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sapbert_st"):
                offenders += [f"{module_name(path)}: {node.module}.{alias.name}"
                              for alias in node.names if alias.name.startswith("_")]
    assert not offenders, offenders
