"""The public-surface import contract (aion/testing/import_contracts.py) on a small hand-made import graph."""

from __future__ import annotations

import grimp

from aion.testing.import_contracts import PublicSurfaceContract


def graph(*imports: tuple[str, str]) -> grimp.ImportGraph:
    built = grimp.ImportGraph()
    for importer, imported in imports:
        for module in (importer, imported):
            for depth in range(1, module.count(".") + 2):
                name = ".".join(module.split(".")[:depth])
                if name not in built.modules:
                    built.add_module(name)
        built.add_import(importer=importer, imported=imported, line_number=1, line_contents=f"import {imported}")
    return built


def contract() -> PublicSurfaceContract:
    return PublicSurfaceContract(
        "surface",
        session_options={},
        contract_options={
            "apps": ["kernel", "router"],
            "public": ["services", "selectors", "models", "choices"],
            "exempt_importers": ["*.tests"],
        },
    )


def test_services_selectors_models_and_a_services_package_are_the_public_surface():
    check = contract().check(
        graph(
            ("router.stats", "kernel.selectors"),
            ("router.services", "kernel.services.transitions"),
            ("router.models", "kernel.models"),
            ("router.services", "router.tasks"),  # inside one app: anything
            ("router.services", "aion.enqueue"),  # the platform is not an app here
        ),
        verbose=False,
    )
    assert check.kept


def test_an_app_importing_another_apps_internals_breaks_it_unless_it_is_test_code():
    check = contract().check(
        graph(("router.services", "kernel.api.views"), ("router.tests.test_x", "kernel.tasks"), ("kernel.api.views", "kernel.services")),
        verbose=False,
    )
    assert not check.kept
    assert [(b.importer, b.imported) for b in check.metadata["breaches"]] == [("router.services", "kernel.api.views")]
