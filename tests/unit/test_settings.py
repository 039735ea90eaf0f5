from pathlib import Path

import pytest

from isolation_harness.chaos.errors import EXIT_HARNESS_ERROR, ConfigError
from isolation_harness.chaos.stack.settings import Settings
from isolation_harness.topology.environment import VARIABLES


def test_defaults_without_variables() -> None:
    settings = Settings.from_env({"PATH": "/bin", "HOME": "/root"})
    assert settings.pg_dsn is None
    assert settings.toxiproxy_url is None
    assert settings.pg_fsync == "off"
    assert settings.state_dir == Path(".harness")


def test_every_variable_is_read() -> None:
    env = {
        "HARNESS_STATE_DIR": "/tmp/s",
        "HARNESS_TOOLS_DIR": "/tmp/t",
        "HARNESS_PG_DSN": "host=db port=5433 user=u",
        "HARNESS_PG_BIN": "/opt/pg/bin",
        "HARNESS_PG_PORT": "6543",
        "HARNESS_PG_FSYNC": "on",
        "HARNESS_PG_MAX_CONNECTIONS": "800",
        "HARNESS_TOXIPROXY_PORT": "9474",
        "HARNESS_APP_PORT": "8081",
        "HARNESS_APP_WORKERS": "3",
        "HARNESS_APP_VARIANT": "legacy",
        "HARNESS_APP_SERVICE_TIMEOUT": "3.5",
        "TOXIPROXY_URL": "http://127.0.0.1:8474/",
        "TOXIPROXY_SERVER": "/opt/toxiproxy-server",
    }
    assert set(env) == {v.name for v in VARIABLES if v.reader == "harness"}
    settings = Settings.from_env(env)
    assert settings.state_dir == Path("/tmp/s")
    assert settings.tools_dir == Path("/tmp/t")
    assert settings.pg_dsn == "host=db port=5433 user=u"
    assert settings.pg_bin == Path("/opt/pg/bin")
    assert settings.pg_port == 6543
    assert settings.pg_fsync == "on"
    assert settings.pg_max_connections == 800
    assert settings.toxiproxy_port == 9474
    assert (settings.app_port, settings.app_workers, settings.app_variant) == (8081, 3, "legacy")
    assert settings.app_service_timeout == 3.5
    assert settings.toxiproxy_url == "http://127.0.0.1:8474"
    assert settings.toxiproxy_server == Path("/opt/toxiproxy-server")


def test_each_of_the_harness_variables_sets_one_field_and_each_field_has_one() -> None:
    fields = [v.field for v in VARIABLES if v.reader == "harness"]
    assert sorted(fields) == sorted(Settings.model_fields)


def test_the_load_variables_are_known_and_left_to_the_load() -> None:
    """The README tells users to set them for Locust started by hand; every `harness`
    command in that shell used to stop at them as unknown variables."""
    load = {v.name: "x" for v in VARIABLES if v.reader == "load"}
    assert {"HARNESS_ADMIN_TOKEN", "HARNESS_MIX", "HARNESS_SEED"} <= set(load)
    assert Settings.from_env(load) == Settings.from_env({})


def test_unknown_variable_names_the_closest_known_one() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"HARNESS_PG_PROT": "5432"})
    assert caught.value.problem == "unknown variable HARNESS_PG_PROT"
    assert "HARNESS_PG_PORT" in caught.value.fix
    assert caught.value.exit_code == EXIT_HARNESS_ERROR


def test_unknown_variable_without_close_match_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"HARNESS_ZZZZZZZZZZZZ": "1"})
    assert "HARNESS_STATE_DIR" in caught.value.fix


def test_empty_variables_count_as_unset() -> None:
    assert Settings.from_env({"HARNESS_PG_PORT": ""}).pg_port is None


@pytest.mark.parametrize(
    ("variable", "value", "complaint"),
    [
        ("HARNESS_PG_PORT", "abc", "valid integer"),
        ("HARNESS_PG_PORT", "0", "greater than or equal to 1"),
        ("HARNESS_PG_PORT", "70000", "less than or equal to 65535"),
        ("HARNESS_TOXIPROXY_PORT", "-1", "greater than or equal to 1"),
        ("HARNESS_PG_FSYNC", "maybe", "'on' or 'off'"),
        ("HARNESS_PG_MAX_CONNECTIONS", "5", "greater than or equal to 20"),
        ("TOXIPROXY_URL", "localhost:8474", "http URL"),
        ("TOXIPROXY_URL", "http://host:port", "malformed port"),
        ("HARNESS_PG_DSN", "   ", "empty"),
        ("HARNESS_APP_WORKERS", "0", "greater than or equal to 1"),
        ("HARNESS_APP_VARIANT", "monolith", "'isolated' or 'legacy'"),
    ],
)
def test_invalid_value_names_variable_value_and_fix(
    variable: str, value: str, complaint: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: value})
    message = str(caught.value)
    assert message.startswith(f"{variable}={value!r}")
    assert complaint in message
    assert f"fix or unset {variable}" in caught.value.fix
    assert "\n" not in message


def test_overrides_are_validated_and_none_ignored() -> None:
    base = Settings.from_env({"HARNESS_PG_PORT": "6000"})
    assert base.with_overrides(pg_port=None).pg_port == 6000
    assert base.with_overrides(pg_port=6001).pg_port == 6001
    with pytest.raises(ConfigError, match="HARNESS_PG_PORT=99999"):
        base.with_overrides(pg_port=99999)


def test_the_tool_folder_is_the_one_make_builds_into() -> None:
    """``make setup`` builds the Toxiproxy server into the repository's ``.tools`` (the
    Makefile's TOXIPROXY); the harness must look there, or every ``make`` builds it again
    (it once looked in ``chaos/.tools`` after the settings moved into a package)."""
    root = Path(__file__).resolve().parents[2]
    assert Settings.from_env({}).tools_dir == root / ".tools"
    makefile = (root / "Makefile").read_text()
    assert "TOXIPROXY := .tools/bin/toxiproxy-server" in makefile
