"""Shared pytest fixtures: real services (started here or already running) and personas."""

import pytest

pytest_plugins = [
    "aion.testing.services",
    "aion.testing.kafka",
    "aion.testing.s3",
    "aion.testing.mongo",
    "aion.testing.http",
    "aion.testing.browser",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``postgres`` tests run in the PostgreSQL configuration only, ``sqlite`` ones on SQLite only.

    Each configuration deselects (does not skip) the other's tests: CI runs both configurations.
    """
    from django.conf import settings

    other = "sqlite" if settings.DATABASE_IS_POSTGRES else "postgres"
    selected, deselected = [], []
    for item in items:
        (deselected if item.get_closest_marker(other) else selected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected
