"""Fixtures for the whole suite come from plugin modules, one per component."""

pytest_plugins = (
    "tests.plugins.preflight",
    "tests.plugins.ordering",
    "tests.plugins.pg_cluster",
    "tests.plugins.toxiproxy_server",
    "tests.plugins.reference_app",
    "tests.plugins.run_folders",
)
