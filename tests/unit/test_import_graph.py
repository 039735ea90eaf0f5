"""The import graph: packages depend one way, modules form no cycle, and nothing reaches
into another package's private module.

``topology`` is at the bottom; ``chaos`` may use ``load``; ``reference_app`` uses neither
(DESIGN.md). Imports under ``if TYPE_CHECKING:`` and inside functions are not counted: they
run at another time, or never.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: the one import name the folders are installed under (isolation_harness/__init__.py)
NAMESPACE = "isolation_harness."
PACKAGES = ("topology", "reference_app", "load", "chaos")
#: package -> the packages it may import
ALLOWED = {
    "topology": set(),
    "reference_app": {"topology"},
    "load": {"topology"},
    "chaos": {"topology", "load", "reference_app"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imported(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of each import run when the module is loaded, the project's own
    modules named without their namespace (``chaos.judge``)."""
    for line, module in _imported(path):
        yield line, module.removeprefix(NAMESPACE)


def _imported(path: Path) -> Iterator[tuple[int, str]]:

    def walk(body: list[ast.stmt]) -> Iterator[tuple[int, str]]:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield node.lineno, alias.name
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield node.lineno, node.module
                for alias in node.names:  # ``from …chaos import faults`` imports a module
                    if f"{node.module}.{alias.name}".removeprefix(NAMESPACE) in MODULES:
                        yield node.lineno, f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Try | ast.If | ast.With):
                yield from walk(node.body)

    yield from walk(ast.parse(path.read_text()).body)


def graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    return {
        name: {m for _, m in imported(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(edges[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_packages_import_one_way() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line}: {name} imports {module}"
        for name, path in MODULES.items()
        for line, module in imported(path)
        if (top := module.partition(".")[0]) in PACKAGES
        and top != name.partition(".")[0]
        and top not in ALLOWED[name.partition(".")[0]]
    ]
    assert not wrong, "\n".join(wrong)


def test_no_module_import_cycle() -> None:
    assert cycles(graph(MODULES)) == []


def package_of(module: str) -> str:
    """``chaos.judge.effect`` -> ``chaos.judge``; ``load.runner`` -> ``load``: the harness's
    packages are one level down, the others are one each."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "chaos" and len(parts) > 1 else parts[0]


def test_no_cycle_between_the_harness_s_packages() -> None:
    """stack, faults, metrics, invariants, scenario, judge, run, report, cli: each uses
    only those before it."""
    edges: dict[str, set[str]] = {}
    for name, deps in graph(MODULES).items():
        edges.setdefault(package_of(name), set()).update(
            package_of(d) for d in deps if package_of(d) != package_of(name)
        )
    for deps in list(edges.values()):
        for dep in deps:
            edges.setdefault(dep, set())
    assert cycles(edges) == []


def test_nothing_imports_another_package_s_private_module() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for name, path in MODULES.items()
        for line, module in imported(path)
        if any(part.startswith("_") and not part.startswith("__") for part in module.split("."))
        and module.rpartition(".")[0] != name.rpartition(".")[0]
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": {"a"}, "c": {"c"}}, [["a", "b"]]),
    ],
)
def test_the_cycle_finder_finds_cycles(
    edges: dict[str, set[str]], expected: list[list[str]]
) -> None:
    assert cycles(edges) == expected
