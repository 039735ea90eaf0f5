"""`pytest scenarios/` runs each scenario file as a test (see chaos/pytest_plugin.py)."""

from isolation_harness.chaos.pytest_plugin import (
    pytest_addoption,
    pytest_collect_file,
    pytest_configure,
    pytest_unconfigure,
)

__all__ = ["pytest_addoption", "pytest_collect_file", "pytest_configure", "pytest_unconfigure"]
