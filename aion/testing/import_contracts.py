"""A custom import-linter contract: an app reaches another app only through its public surface.

import-linter's own contracts forbid whole packages; this one says which parts of an app others may
import. Configured in ``pyproject.toml`` (``[[tool.importlinter.contracts]]`` with
``type = "public_surface"``); ``docs/architecture.md`` explains the surface. Test code is exempt
(``exempt_importers``): a test may look inside any app.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import grimp
from importlinter import Contract, ContractCheck, fields, output
from importlinter.domain.helpers import module_expressions_to_modules


@dataclass(frozen=True, order=True)
class Breach:
    importer: str
    imported: str
    line_number: int
    line: str


class PublicSurfaceContract(Contract):
    """For each app in ``apps``, a module of another app may import only ``<app>.<name>`` (and what is
    below it) for a name in ``public``: e.g. ``kernel.services`` and ``modules.selectors``, never
    ``kernel.api.views``. Direct imports are checked; an indirect chain passes through a direct one."""

    type_name = "public_surface"

    apps = fields.ListField(subfield=fields.StringField())
    public = fields.ListField(subfield=fields.StringField())
    exempt_importers = fields.ListField(subfield=fields.ModuleExpressionField(), required=False)

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        # import-linter sets each field to its parsed value (a list) on the instance.
        apps: list[str] = list(cast(list[str], self.apps))
        public: tuple[str, ...] = tuple(cast(list[str], self.public))
        expressions = cast(list[Any], self.exempt_importers or [])
        exempt = {m.name for m in module_expressions_to_modules(graph, expressions, as_packages=True)}
        breaches: list[Breach] = []
        for app in apps:
            allowed = tuple(f"{app}.{name}" for name in public)
            for imported in sorted(graph.find_descendants(app) | {app}):
                if imported == app or any(imported == a or imported.startswith(a + ".") for a in allowed):
                    continue
                for importer in sorted(graph.find_modules_that_directly_import(imported)):
                    if importer.split(".")[0] == app or importer in exempt or importer.split(".")[0] not in apps:
                        continue
                    for detail in graph.get_import_details(importer=importer, imported=imported):
                        breaches.append(Breach(importer, imported, detail["line_number"], detail["line_contents"]))
        return ContractCheck(kept=not breaches, metadata={"breaches": sorted(breaches), "public": public})

    def render_broken_contract(self, check: ContractCheck) -> None:
        surface = ", ".join(check.metadata["public"])
        for breach in check.metadata["breaches"]:
            output.print_error(f"{breach.importer} -> {breach.imported} (l. {breach.line_number}: {breach.line})")
        output.new_line()
        output.print(f"Import another app only through its public surface ({surface}); see docs/architecture.md.")


class ForbiddenNamesContract(Contract):
    """Each source module imports no module in ``forbidden`` (nor below one), ours or a library's.

    import-linter's ``forbidden`` contract names only a whole external package (``rest_framework``, not
    ``django.http``); this one reads the imported name from each direct import of a source module, so
    ``django.http`` can be forbidden while ``django.db`` is not. Indirect imports are allowed: what a
    service imports may know HTTP, the service itself may not. Needs ``include_external_packages``.
    """

    type_name = "forbidden_names"

    source_modules = fields.ListField(subfield=fields.ModuleExpressionField())
    forbidden = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        expressions = cast(list[Any], self.source_modules)
        sources = sorted(m.name for m in module_expressions_to_modules(graph, expressions))
        forbidden: tuple[str, ...] = tuple(cast(list[str], self.forbidden))
        breaches: list[Breach] = []
        for importer in sources:
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                for detail in graph.get_import_details(importer=importer, imported=imported):
                    name = _imported_name(detail["line_contents"]) or imported
                    if any(name == f or name.startswith(f + ".") for f in forbidden):
                        breaches.append(Breach(importer, name, detail["line_number"], detail["line_contents"]))
        return ContractCheck(kept=not breaches, metadata={"breaches": sorted(set(breaches)), "forbidden": forbidden})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for breach in check.metadata["breaches"]:
            output.print_error(f"{breach.importer} -> {breach.imported} (l. {breach.line_number}: {breach.line})")
        output.new_line()
        output.print(f"These modules may not import {', '.join(check.metadata['forbidden'])}; see docs/architecture.md.")


def _imported_name(line: str) -> str:
    """The module an import line names: ``from django.http import X`` -> ``django.http`` (grimp squashes
    an external package to its top-level name, so the line is where the submodule shows)."""
    words = line.split()
    if len(words) >= 2 and words[0] in ("from", "import"):
        return words[1].rstrip(",")
    return ""
