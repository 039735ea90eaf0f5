"""What an invariant is: a name, what it looks at after a run (:class:`Facts`), and a check
that says what it checked and every violation it found (:class:`InvariantResult`).

A new invariant is one module that defines its check and registers it:

    @invariant("no_orphan_offers", needs={"p2p"})
    def no_orphan_offers(facts: Facts) -> InvariantResult:
        rows = facts.rows("SELECT id FROM p2p.offers WHERE ...")
        return InvariantResult.of("no_orphan_offers", checked=..., violations=[...])

imported by :mod:`chaos.invariants` (a test registers one from its own file, the same
way), and its entry in ``docs/scenarios.md``. Scenario files may then name it; a scenario
that names none checks every registered invariant its load mix can exercise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from isolation_harness.chaos.invariants.oracle import ProviderPayment
    from isolation_harness.load.operations import Operation

#: violations listed in a report at most (all are counted)
MAX_LISTED = 20
#: ``since`` when the run's start is not known: every stored operation is the run's
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class InvariantResult:
    """One money or resource invariant, checked after the run."""

    name: str
    passed: bool
    checked: int
    violations: list[str] = field(default_factory=list)
    #: what the check counted, by category (the oracle's lost, unexpected, duplicated…)
    counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(
        cls, name: str, checked: int, violations: list[str], counts: dict[str, int] | None = None
    ) -> InvariantResult:
        """Passed when nothing was violated."""
        return cls(name, not violations, checked, violations, dict(counts or {}))

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "passed": self.passed,
            "checked": self.checked,
            "counts": self.counts,
            "violations": self.violations[:MAX_LISTED],
            "violation_count": len(self.violations),
        }


@dataclass(frozen=True)
class Facts:
    """What the invariants look at after a run, the load stopped and every fault reverted."""

    #: a cursor on the app's database as the superuser (never through a link)
    cursor: Any
    #: the client's record of every money-moving request of the run
    operations: Sequence[Operation] = ()
    #: the database's time when the run began: stored operations before it are not its own
    since: datetime | None = None
    #: the payment provider's book; None when it could not be read
    payments: Sequence[ProviderPayment] | None = None
    #: application_name of each pool -> how many connections its pools may hold in all
    capacity: Mapping[str, int] = field(default_factory=dict)
    #: the faults still in place after every revert (``chaos.faults.residue``)
    residue: Sequence[str] = ()
    #: how many links the stack has (what the residue check looked at)
    links: int = 0

    def rows(self, query: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """The rows of ``query`` on :attr:`cursor`."""
        self.cursor.execute(query, params)
        return list(self.cursor.fetchall())


Check = Callable[[Facts], InvariantResult]


@dataclass(frozen=True)
class InvariantKind:
    """One registered invariant."""

    name: str
    check: Check
    #: the kinds of users whose work it checks: with none of them in the mix it would check
    #: nothing, which makes a run invalid (None: whatever the mix)
    needs: frozenset[str] | None = None
    #: it judges what the payment provider did: the runner first has the provider send its
    #: undelivered IPNs again (as the real one retries them) and reads its book
    reads_provider: bool = False
    #: older names still accepted in scenario files
    aliases: tuple[str, ...] = ()


#: every invariant by name, in the order they were registered
REGISTRY: dict[str, InvariantKind] = {}


def invariant(
    name: str,
    *,
    needs: set[str] | frozenset[str] | None = None,
    reads_provider: bool = False,
    aliases: Sequence[str] = (),
) -> Callable[[Check], Check]:
    """Register the decorated check as the invariant ``name``."""

    def register(check: Check) -> Check:
        taken = {n for kind in REGISTRY.values() for n in (kind.name, *kind.aliases)}
        for given in (name, *aliases):
            if given in taken:
                raise ValueError(f"invariant {given!r} is registered already")
        REGISTRY[name] = InvariantKind(
            name, check, None if needs is None else frozenset(needs), reads_provider,
            tuple(aliases),
        )  # fmt: skip
        return check

    return register


def canonical(name: str) -> str | None:
    """The registered name ``name`` stands for (itself, or the invariant it is an older
    name of); None when it names none."""
    if name in REGISTRY:
        return name
    return next((kind.name for kind in REGISTRY.values() if name in kind.aliases), None)


def names() -> tuple[str, ...]:
    """Every registered invariant's name."""
    return tuple(REGISTRY)


def exercised_by(mix: set[str] | frozenset[str]) -> tuple[str, ...]:
    """The invariants that check something with users of the kinds in ``mix``."""
    return tuple(kind.name for kind in REGISTRY.values() if kind.needs is None or kind.needs & mix)
