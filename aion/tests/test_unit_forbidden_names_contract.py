"""The forbidden-names import contract (aion/testing/import_contracts.py): services import nothing of HTTP.

On a hand-made import graph, the way grimp builds it with ``include_external_packages``: an external
package is one squashed node (``django``), its submodule shows only in the import line.
"""

from __future__ import annotations

import grimp

from aion.testing.import_contracts import ForbiddenNamesContract


def graph(*imports: tuple[str, str, str]) -> grimp.ImportGraph:
    built = grimp.ImportGraph()
    for importer, imported, line in imports:
        for module in (importer, imported):
            for depth in range(1, module.count(".") + 2):
                name = ".".join(module.split(".")[:depth])
                if name not in built.modules:
                    built.add_module(name, is_squashed=name in ("django", "rest_framework"))
        built.add_import(importer=importer, imported=imported, line_number=1, line_contents=line)
    return built


def contract() -> ForbiddenNamesContract:
    return ForbiddenNamesContract(
        "services-know-no-http",
        session_options={},
        contract_options={"source_modules": ["hooks.services.**", "memory.services"], "forbidden": ["aion.problems", "django.http"]},
    )


def test_a_service_may_import_the_domain_errors_and_djangos_orm():
    check = contract().check(
        graph(
            ("memory.services", "aion.errors", "from aion.errors import NotFound"),
            ("memory.services", "django", "from django.db import transaction"),
            ("hooks.services.inbound", "django", "from django.conf import settings"),
            ("memory.api.views", "aion.problems", "from aion.problems import Problem"),  # the edge: not a source module
        ),
        verbose=False,
    )
    assert check.kept


def test_a_service_importing_the_http_problem_or_django_http_breaks_it():
    check = contract().check(
        graph(
            ("memory.services", "aion.problems", "from aion.problems import Problem"),
            ("hooks.services.inbound", "django", "from django.http import HttpResponse"),
            ("hooks.services.inbound", "aion.errors", "from aion.errors import Conflict"),
        ),
        verbose=False,
    )
    assert not check.kept
    assert [(b.importer, b.imported) for b in check.metadata["breaches"]] == [
        ("hooks.services.inbound", "django.http"),
        ("memory.services", "aion.problems"),
    ]
