"""The shape of the house: the HTTP layer is shared by the API and the pages, neither of which imports the
other, and nothing below them knows about Flask or HTTP."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from referral.config import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "referral"
# What the layers below the views may not import.
WEB_FRAMEWORK = ("flask", "werkzeug", "flask_smorest", "webargs", "flask_limiter")
BELOW_THE_VIEWS = ("services", "models", "billing", "imaging", "documents", "fhir", "dicom_net")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _modules(package: str) -> list[Path]:
    return sorted((PACKAGE / package).rglob("*.py"))


@pytest.mark.parametrize("package", BELOW_THE_VIEWS)
def test_nothing_below_the_views_imports_the_web_framework_or_the_views(package: str):
    offending = {
        str(path.relative_to(PROJECT_ROOT)): sorted(
            name for name in _imports(path)
            if name.split(".")[0] in WEB_FRAMEWORK
            or name.startswith(("referral.http", "referral.api", "referral.web"))
        )
        for path in _modules(package)
    }
    assert {path: names for path, names in offending.items() if names} == {}


@pytest.mark.parametrize(("package", "other"), [("api", "referral.web"), ("web", "referral.api")])
def test_the_api_and_the_pages_do_not_import_each_other(package: str, other: str):
    offending = {str(path.relative_to(PROJECT_ROOT)): sorted(n for n in _imports(path) if n.startswith(other))
                 for path in _modules(package)}
    assert {path: names for path, names in offending.items() if names} == {}


@pytest.mark.parametrize("order", [("referral.api", "referral.web"), ("referral.web", "referral.api")])
def test_the_api_and_the_pages_import_in_either_order_without_loading_each_other(order: tuple[str, str]):
    first, second = order
    script = (f"import sys, {first}; "
              f"assert not any(m.startswith('{second}') for m in sys.modules), 'loaded the other'; "
              f"import {second}")
    finished = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True,
                              timeout=120, check=False)
    assert finished.returncode == 0, finished.stderr


def test_only_service_entry_points_end_a_transaction():
    """Private helpers in services never commit or roll back: the public function that called them does."""
    offending = []
    for path in _modules("services"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("_"):
                offending += [f"{path.name}:{node.name}" for call in ast.walk(node)
                              if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                              and call.func.attr in ("commit", "rollback")]
    assert offending == []
