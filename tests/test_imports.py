"""The package's import graph: no cycle between modules, no room importing a room above it.

Every ``import`` statement counts, also those inside functions (a lazy import is still a dependency);
those under ``if TYPE_CHECKING:`` do not. The rooms' order, lowest first, is :data:`ROOMS`: a module
may import its own room and the rooms before it, never one after it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import occface_jax

PACKAGE_DIR = Path(occface_jax.__file__).parent

#: Rooms from the ground floor up. ``app`` (inference) and ``train`` never import each other.
ROOMS = (
    ("errors", "paths", "extras", "__init__"),
    ("config", "configs"),
    ("render",),
    ("morphable",),
    ("io",),
    ("models",),
    ("faces",),
    ("losses",),
    ("data",),
    ("texture",),
    ("fit",),
    ("app",),
    ("eval",),
    ("train",),
    ("cli",),
)
LEVEL = {name: level for level, names in enumerate(ROOMS) for name in names}
NEVER = {("app", "train"), ("train", "app")}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The project modules ``path`` imports (``from a import b`` counts as ``a.b`` when that is a
    module, else ``a``)."""
    tree = ast.parse(path.read_text(), str(path))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skip.update(id(n) for n in ast.walk(node))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("occface_jax"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if not node.module.startswith("occface_jax"):
                continue
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
    return {m for m in found if m in known}


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE_DIR.rglob("*.py")}
    known = set(files)
    return {name: imported_modules(path, known) - {name} for name, path in files.items()}


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_module_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_every_room_is_ranked():
    rooms = {room(m) for m in import_graph()}
    assert rooms <= set(LEVEL), f"rooms missing from ROOMS: {sorted(rooms - set(LEVEL))}"


def test_no_room_imports_upward():
    upward = [
        f"{src} imports {dst}"
        for src, deps in import_graph().items()
        for dst in deps
        if LEVEL[room(dst)] > LEVEL[room(src)] or (room(src), room(dst)) in NEVER
    ]
    assert not upward, "\n".join(sorted(upward))


def test_render_knows_nothing_of_morphable_models():
    graph = import_graph()
    bad = [
        f"{m} -> {d}"
        for m, deps in graph.items()
        if room(m) == "render"
        for d in deps
        if room(d) != "render"
    ]
    assert not bad, bad
