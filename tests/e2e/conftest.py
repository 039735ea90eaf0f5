"""What the end-to-end tests share: one running stack per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli.conftest import harness_stack_env


@pytest.fixture(scope="module")
def stack_env_module() -> Iterator[dict[str, str]]:
    """The environment of a stack brought up by ``harness up`` for the module's tests."""
    with harness_stack_env() as env:
        yield env
