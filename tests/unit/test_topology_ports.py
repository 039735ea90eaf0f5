"""Free ports: one handed out is nobody else's until its server has had time to bind it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from isolation_harness.topology import ports


@pytest.fixture(autouse=True)
def own_reservations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ports.json"
    monkeypatch.setattr(ports, "RESERVATIONS", path)
    return path


def _draws(monkeypatch: pytest.MonkeyPatch, *values: int) -> None:
    """The random draws ``free_port`` will make, in order."""
    queue = list(values)
    monkeypatch.setattr(ports.random, "randint", lambda low, high: queue.pop(0))


def test_a_port_handed_out_and_not_yet_bound_is_not_handed_out_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _draws(monkeypatch, 23456, 23456, 23457)
    assert ports.free_port() == 23456
    # nothing listens on 23456 yet (its server is still starting): it is still taken
    assert ports.free_port() == 23457


def test_another_process_does_not_get_a_port_this_one_reserved(own_reservations: Path) -> None:
    mine = ports.free_port()
    script = (
        "from pathlib import Path; from topology import ports\n"
        f"ports.RESERVATIONS = Path({str(own_reservations)!r})\n"
        f"draws = iter([{mine}, 24680])\n"
        "ports.random.randint = lambda low, high: next(draws)\n"
        "print(ports.free_port())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert int(done.stdout) == 24680 != mine


def test_a_reservation_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    _draws(monkeypatch, 23456, 23456)
    assert ports.free_port() == 23456
    later = time.time() + ports.RESERVE_SECONDS + 1
    monkeypatch.setattr(ports.time, "time", lambda: later)
    assert ports.free_port() == 23456


def test_unreadable_reservations_count_as_none(
    own_reservations: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own_reservations.write_text("{not json")
    _draws(monkeypatch, 23456)
    assert ports.free_port() == 23456
    assert "23456" in own_reservations.read_text()


def test_a_port_in_use_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with ports.socket.socket() as sock:
        sock.bind((ports.LOOPBACK, 0))
        sock.listen()
        busy = sock.getsockname()[1]
        _draws(monkeypatch, busy, 23457)
        assert ports.free_port() == 23457


def test_a_link_in_place_of_the_reservations_is_not_followed(
    own_reservations: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = tmp_path / "someone-elses-file"
    victim.write_text("keep me")
    own_reservations.symlink_to(victim)
    _draws(monkeypatch, 23456)
    assert ports.free_port() == 23456
    assert victim.read_text() == "keep me"
