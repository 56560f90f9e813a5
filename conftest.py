"""Shared pytest fixtures: real services (started here or already running) and personas."""

import pytest

pytest_plugins = [
    "aion.testing.services",
    "aion.testing.kafka",
    "aion.testing.s3",
    "aion.testing.mongo",
    "aion.testing.http",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``@pytest.mark.postgres`` tests run in the PostgreSQL configuration only (deselected on SQLite)."""
    from django.conf import settings

    if settings.DATABASE_IS_POSTGRES:
        return
    selected, deselected = [], []
    for item in items:
        (deselected if item.get_closest_marker("postgres") else selected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected
