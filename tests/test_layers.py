"""Imports follow docs/architecture.md for the layers this checks: nothing below `tune/` imports it (report,
progress, tracking, study, results), the watchers of a running study import neither Ray nor Optuna, the results
package file imports nothing, and the modules an error path needs import no pyarrow or pandas when loaded."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

HARMA = Path(__file__).resolve().parents[1] / "harma"


def imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Modules a file imports (every import statement, or only those at module level)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def files(*packages: str) -> list[Path]:
    return [p for pkg in packages for p in sorted((HARMA / pkg).rglob("*.py"))]


@pytest.mark.parametrize("path", files("report", "progress", "tracking", "study", "results"), ids=str)
def test_nothing_below_tune_imports_it(path):
    assert not any(m == "harma.tune" or m.startswith("harma.tune.") for m in imports(path))


@pytest.mark.parametrize("path", files("progress", "tracking"), ids=str)
def test_the_watchers_import_neither_ray_nor_optuna(path):
    assert not any(m.split(".")[0] in ("ray", "optuna", "torch") for m in imports(path))


def test_the_results_package_file_imports_nothing():
    assert imports(HARMA / "results" / "__init__.py") == set()


@pytest.mark.parametrize("module", ["results/root.py", "results/trials.py", "study/fresh.py", "study/snapshot.py",
                                    "report/live.py", "results/cli.py", "report/cli.py", "study_cli.py"])
def test_error_path_modules_load_without_pyarrow_or_pandas(module):
    heavy = {m for m in imports(HARMA / module, top_level_only=True) if m.split(".")[0] in ("pyarrow", "pandas")}
    assert heavy == set()
