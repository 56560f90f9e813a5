"""The kernel's service layer knows no HTTP: it raises aion.errors kinds, and the edge maps them.

The import-linter contract ``kernel-services-no-http`` (pyproject.toml, run by ``lint-imports``)
forbids aion.problems, aion.rbac, aion.api and rest_framework, directly or through any chain. It
cannot name a part of an external package, so this test reads the modules' own imports for
``django.http`` (and the rest, so a failure here says which line).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import kernel

SERVICE_LAYER = ("services", "presenters", "selectors", "documents", "errors", "policy")
HTTP_MODULES = ("aion.problems", "aion.rbac", "aion.api", "rest_framework", "django.http", "django.shortcuts")


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return found


@pytest.mark.parametrize("name", SERVICE_LAYER)
def test_the_service_layer_imports_nothing_http(name: str) -> None:
    path = Path(kernel.__file__).parent / f"{name}.py"
    http = [
        f"line {line}: {module}"
        for line, module in imported_modules(path)
        if any(module == forbidden or module.startswith(forbidden + ".") for forbidden in HTTP_MODULES)
    ]
    assert not http, f"kernel/{name}.py imports HTTP: {http}"


def test_the_check_sees_an_http_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from django.http import Http404\nfrom aion import problems\n")
    assert {module for _, module in imported_modules(sample)} >= {"django.http", "aion.problems"}
