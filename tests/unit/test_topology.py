"""The topology contract: one definition of each name, and the docs written from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from isolation_harness.topology.durations import DurationError, parse_duration
from isolation_harness.topology.environment import PREFIX, VARIABLES, variable_named
from isolation_harness.topology.links import LINK_NAMES, SHARED_LINK, database_link, link_named
from isolation_harness.topology.services import LEGACY_POOL, SERVICES, VARIANTS, role_of

ROOT = Path(__file__).resolve().parents[2]
_NAME = re.compile(r"\b(?:HARNESS_[A-Z_]*[A-Z]|TOXIPROXY_(?:URL|SERVER))\b")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("2m", 120), ("1m30s", 90), ("1h", 3600), ("500ms", 0.5), ("15", 15),
     ("2.5s", 2.5)],
)  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "10x", "-5", "0", "m", "5 s", "nan", "inf"])
def test_malformed_durations(text: str) -> None:
    with pytest.raises(DurationError, match="duration"):
        parse_duration(text)
    assert issubclass(DurationError, ValueError)  # what pydantic and click report


def test_every_service_has_its_own_database_link_and_role() -> None:
    for service in SERVICES:
        link = link_named(database_link(service))
        assert (link.service, link.target) == (service, "postgres")
        assert role_of(service) != role_of(LEGACY_POOL)
    assert SHARED_LINK == database_link(LEGACY_POOL) in LINK_NAMES
    assert len({role_of(s) for s in SERVICES}) == len(SERVICES)
    assert VARIANTS == ("isolated", "legacy")


def test_each_variable_is_named_once_and_read_by_someone() -> None:
    names = [v.name for v in VARIABLES]
    assert len(names) == len(set(names))
    for variable in VARIABLES:
        assert variable.name.startswith((PREFIX, "TOXIPROXY_"))
        assert variable.reader in ("harness", "load")
        assert variable_named(variable.name) is variable
    assert variable_named("HARNESS_NOPE") is None


def test_the_readme_table_lists_every_variable_with_its_reader() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `([A-Z_]+)` \| (harness|load) \|", readme, re.M)
    assert sorted(rows) == sorted((v.name, v.reader) for v in VARIABLES)


def test_every_variable_the_docs_mention_is_known() -> None:
    """A variable a user is told to set that the harness does not know makes every
    `harness` command in that shell stop (it was so for HARNESS_ADMIN_TOKEN)."""
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    mentioned = {name for doc in docs for name in _NAME.findall(doc.read_text())}
    assert mentioned, "the pattern found no variable at all"
    unknown = sorted(name for name in mentioned if variable_named(name) is None)
    assert not unknown, f"mentioned in the docs but unknown: {unknown}"
