"""The test folders have no `__init__.py`, so pytest imports test modules by basename; the
scenario builders they share are the package `tests/support`, on the path as `support`."""

import ast
from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
SUPPORT = TESTS / "support"


def test_test_module_basenames_are_unique() -> None:
    names = Counter(path.name for path in TESTS.rglob("test_*.py"))

    assert [name for name, count in names.items() if count > 1] == []


def test_support_is_a_package_of_builders_with_no_tests() -> None:
    assert (SUPPORT / "__init__.py").is_file()
    assert list(SUPPORT.rglob("test_*.py")) == []
    # A module or folder of that name in a test folder would hide the package.
    assert [
        p for p in TESTS.rglob("support*") if p.parent != TESTS and SUPPORT not in p.parents
    ] == []


def builders() -> set[str]:
    """The public functions that build parts of scenarios and the shared whole scenarios."""
    names = set()
    for module in (SUPPORT / "documents.py", SUPPORT / "scenarios.py"):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        names |= {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    return {name for name in names if not name.startswith("_")}


def test_no_test_module_defines_its_own_copy_of_a_shared_builder() -> None:
    """Fixtures may share a builder's name (a `server` process); plain functions may not."""
    shared = builders()
    copies = []
    for path in TESTS.rglob("*.py"):
        if SUPPORT in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.FunctionDef)
                and node.name in shared
                and not node.decorator_list
            ):
                copies.append(f"{path.relative_to(TESTS)}:{node.lineno} {node.name}")

    assert copies == []
