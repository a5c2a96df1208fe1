"""The shape of ``seed/``: imports flow one way (no circle), and no import hides inside a function to
dodge one. Read from the source with ``ast``; nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

SEED = Path(__file__).resolve().parent.parent / "seed"


def module_name(path: Path) -> str:
    rel = path.relative_to(SEED.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def resolve(module: str, node: ast.ImportFrom | ast.Import, is_package: bool) -> list[str]:
    """The seed modules one import statement names."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith("seed")]
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level:
        base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
        target = ".".join([*base, node.module] if node.module else base)
    else:
        target = node.module or ""
    if not target.startswith("seed"):
        return []
    # "from . import checks" names modules too
    return [f"{target}.{a.name}" if is_module(f"{target}.{a.name}") else target for a in node.names]


def is_module(dotted: str) -> bool:
    path = SEED.parent / dotted.replace(".", "/")
    return path.with_suffix(".py").exists() or path.is_dir()


def imports() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module-level imports, imports inside functions) between seed modules."""
    top: dict[str, set[str]] = {}
    inner: dict[str, set[str]] = {}
    for path in sorted(SEED.rglob("*.py")):
        module = module_name(path)
        tree = ast.parse(path.read_text())
        top[module], inner[module] = set(), set()
        functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        nested = {
            id(n) for f in functions for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))
        }
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = {n for n in resolve(module, node, path.name == "__init__.py") if n != module}
                (inner if id(node) in nested else top)[module].update(names)
    return top, inner


def reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return False


def test_the_imports_of_seed_make_no_circle():
    top, _ = imports()
    circles = [
        f"{a} -> {b} -> ... -> {a}" for a, targets in top.items() for b in targets if reaches(top, b, a)
    ]
    assert circles == []


def test_no_import_inside_a_function_dodges_a_circle():
    top, inner = imports()
    dodges = [
        f"{a} imports {b} in a function"
        for a, targets in inner.items()
        for b in targets
        if reaches(top, b, a)
    ]
    assert dodges == []


def test_the_stand_in_imports_nothing_of_the_seeder():
    top, inner = imports()
    for module in top:
        if module.startswith("seed.standin."):
            assert {t for t in top[module] | inner[module] if not t.startswith("seed.standin")} == set(), (
                module
            )


def test_the_walk_sees_the_imports_it_should():
    top, _ = imports()  # a check that would pass on an empty graph proves nothing
    assert "seed.coordination.run" in top["seed.coordination.coordinator"]
    assert "seed.core.work" in top["seed.coordination.run"]


# The folders are the architecture: each floor imports only from the floors below it.
FLOORS = ("seed.core", "seed.kanta", "seed.coordination", "seed.glue")


def floor_of(module: str) -> int | None:
    for i, prefix in enumerate(FLOORS):
        if module == prefix or module.startswith(prefix + "."):
            return i
    return None


def test_no_import_runs_back_up_the_floors():
    top, inner = imports()
    upward = [
        f"{a} ({FLOORS[fa]}) imports {b} ({FLOORS[fb]})"
        for a, targets in {k: top[k] | inner[k] for k in top}.items()
        for b in targets
        if (fa := floor_of(a)) is not None and (fb := floor_of(b)) is not None and fb > fa
    ]
    assert upward == []


def test_every_module_of_the_seeder_sits_on_a_floor():
    top, _ = imports()
    loose = [
        m
        for m in top
        if floor_of(m) is None
        and not m.startswith("seed.standin")
        and m not in ("seed", "seed.__main__", "seed.locustfile")
    ]
    assert loose == []


def test_no_bare_gevent_spawn_in_the_seeder():
    """Every greenlet of the seeder starts through core/greenlets.py (named, grouped, its crash said);
    the stand-in, which imports nothing of the seeder, wraps its jobs in a guard of its own."""
    bare = [
        f"{path.relative_to(SEED.parent)}:{n}"
        for path in sorted(SEED.rglob("*.py"))
        if path.name != "greenlets.py" and "standin" not in path.parts
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if "gevent.spawn" in line and not line.lstrip().startswith("#")
    ]
    assert bare == []
