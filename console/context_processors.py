"""Navigation for the Console base layout; a page not built yet links nowhere."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

NAV = [
    ("Proposals", "kernel:proposals"),
    ("Hosts", "kernel:hosts"),
    ("Webhooks", "hooks:index"),
    ("Memory", "memory:index"),
    ("Router", "router:index"),
    ("Modules", "modules:index"),
    ("Audit", "console:audit"),
    ("Incidents", "console:incidents"),
    ("Jobs", "console:jobs"),
]


def console(request: HttpRequest) -> dict[str, Any]:
    items = []
    for label, name in NAV:
        url = ""
        # App pages are included inside the console namespace ("console:kernel:proposals").
        for candidate in (name, f"console:{name}"):
            try:
                url = reverse(candidate)
                break
            except NoReverseMatch:
                continue
        items.append({"label": label, "url": url, "active": bool(url) and request.path.startswith(url)})
    return {"console_nav": items}
