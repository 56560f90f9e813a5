"""The env helpers: typed values, *_FILE secrets, and loud failures naming the variable."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from aion import env
from aion.testing.processes import django_setup_in_subprocess


def test_integer_names_the_variable_on_a_bad_value(monkeypatch):
    monkeypatch.setenv("AION_SOMETHING", "twelve")
    with pytest.raises(ImproperlyConfigured, match="AION_SOMETHING must be an integer"):
        env.integer("AION_SOMETHING", 1)


def test_boolean_rejects_junk(monkeypatch):
    monkeypatch.setenv("AION_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="AION_FLAG"):
        env.boolean("AION_FLAG")


def test_file_variant_supplies_secrets(monkeypatch, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    monkeypatch.delenv("AION_PASSWORDISH", raising=False)
    monkeypatch.setenv("AION_PASSWORDISH_FILE", str(secret))
    assert env.string("AION_PASSWORDISH") == "s3cr3t"


def test_bounds_are_checked(monkeypatch):
    monkeypatch.setenv("AION_N", "0")
    with pytest.raises(ImproperlyConfigured, match="AION_N must be >= 1"):
        env.integer("AION_N", 5, minimum=1)


@pytest.mark.parametrize(
    ("name", "value"),
    [("DATABASE_URL", "mysql://x"), ("AION_MEMORY_MAX_CHUNK_BYTES", "lots"), ("AION_ENV", "staging"), ("REDIS_URL", "http://x")],
)
def test_settings_fail_loudly_at_start_up(name, value, tmp_path):
    result = django_setup_in_subprocess({"AION_VAR_DIR": str(tmp_path), name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and name in result.stderr


def test_debug_is_off_by_default(settings):
    assert settings.DEBUG is False
