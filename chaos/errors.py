"""The harness's exception tree, in one place.

Every error the harness raises on purpose derives from :class:`HarnessError`. The command
line prints ``str(error)`` as one line (the problem, then the fix) and exits with
:data:`EXIT_HARNESS_ERROR`.

    HarnessError
    ├── ConfigError          bad variable, option or value given by the user
    │   ├── PortInUseError   an explicitly requested port is taken
    │   ├── ScenarioFileError     a scenario file is malformed (file, line, field)
    │   └── ThresholdSyntaxError  a threshold expression does not parse (position)
    ├── MissingToolError     a binary the harness needs is not installed
    ├── ComponentError       a component failed to start, stop or answer
    │   └── NotReadyError    a component did not become ready before its deadline
    ├── NotSupportedError    the operation is impossible in this set-up (e.g. restarting
    │                        an external PostgreSQL server)
    └── ToxiproxyError       the Toxiproxy API answered with an error
        ├── ProxyNotFound / ToxicNotFound   (404)
        └── AlreadyExists                   (409)
"""

from __future__ import annotations

from collections.abc import Sequence

EXIT_PASS = 0
EXIT_THRESHOLD = 1
EXIT_INVARIANT = 2
EXIT_INVALID = 3
EXIT_HARNESS_ERROR = 4

#: what each exit code says, in a report's words
EXIT_LABELS = {
    EXIT_PASS: "PASS",
    EXIT_THRESHOLD: "FAIL (threshold)",
    EXIT_INVARIANT: "FAIL (invariant)",
    EXIT_INVALID: "INVALID",
    EXIT_HARNESS_ERROR: "ERROR",
}

#: when there are several results (a suite, repeated runs), the most serious one is the exit
#: code: money first, then an invalid run, then a breach
SEVERITY = (EXIT_HARNESS_ERROR, EXIT_INVARIANT, EXIT_INVALID, EXIT_THRESHOLD, EXIT_PASS)


def worst(codes: Sequence[int]) -> int:
    """The most serious of ``codes`` (a pass if there are none)."""
    return min(codes, key=SEVERITY.index) if codes else EXIT_PASS


class HarnessError(Exception):
    """An error of the harness or its infrastructure (exit code 4).

    ``problem`` says what went wrong, ``fix`` what the user can do about it.
    """

    exit_code = EXIT_HARNESS_ERROR

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} — {fix}" if fix else problem)


class ConfigError(HarnessError):
    """A variable, option or value given by the user is invalid."""


class PortInUseError(ConfigError):
    """A port requested explicitly is already taken."""


class MissingToolError(HarnessError):
    """A binary the harness needs is not installed or not found."""


class ComponentError(HarnessError):
    """A component (PostgreSQL, Toxiproxy, …) failed to start, stop or answer."""


class NotReadyError(ComponentError):
    """A component did not become ready before its deadline."""


class StackBusy(ComponentError):
    """Another command holds the stack's lock: it is starting or stopping that stack."""


class NotSupportedError(HarnessError):
    """The operation is not possible with this set-up."""


class ToxiproxyError(HarnessError):
    """The Toxiproxy API answered with an error; ``status`` is its HTTP status."""

    def __init__(self, problem: str, fix: str = "", *, status: int = 0) -> None:
        self.status = status
        super().__init__(problem, fix)


class ProxyNotFound(ToxiproxyError):
    """No proxy of that name exists on the Toxiproxy server."""


class ToxicNotFound(ToxiproxyError):
    """No toxic of that name exists on the proxy."""


class AlreadyExists(ToxiproxyError):
    """A proxy or toxic of that name already exists."""


class FieldProblem(ValueError):
    """A validation problem at ``loc``, a path below the field or model being validated
    (the scenario loader adds it to the path it reports)."""

    def __init__(self, message: str, *loc: str | int) -> None:
        super().__init__(message)
        self.loc = loc
