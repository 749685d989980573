"""The CPU cap of background work (`cidx.cpucap`) and the daemon settings that set it.

The pacing arithmetic runs against a simulated clock here; the daemon
running under the cap with the real model is in test_daemon."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from cidx.cpucap import BURST_SECONDS, CpuCap
from cidx.daemon._settings import DaemonSettings, cpu_cap, load_settings
from cidx.errors import ConfigError, UsageError


class _Machine:
    """A simulated process: wall time, CPU time, and sleeps that only pass wall time."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0

    def work(self, seconds: float, cores: float = 1.0) -> None:
        self.wall += seconds
        self.cpu += seconds * cores

    def sleep(self, seconds: float) -> None:
        self.wall += seconds

    def cap(self, percent: float, cpus: int = 2) -> CpuCap:
        return CpuCap(
            percent,
            cpus=cpus,
            clock=lambda: self.wall,
            cpu_clock=lambda: self.cpu,
            sleep=self.sleep,
        )


def test_background_work_averages_under_the_cap() -> None:
    machine = _Machine()
    cap = machine.cap(25, cpus=2)  # half a core of two
    with cap.background():
        cap.pace()
        for _ in range(200):
            machine.work(0.3)  # one batch, one core busy
            cap.pace()
    share = machine.cpu / machine.wall / 2
    assert 0.24 <= share <= 0.25 + BURST_SECONDS * 0.5 / machine.wall
    assert cap.slept > 0


def test_idle_time_banks_only_a_short_burst() -> None:
    machine = _Machine()
    cap = machine.cap(25, cpus=2)  # 0.5 CPU seconds per second
    with cap.background():
        cap.pace()
        machine.sleep(3600)  # an idle hour
        assert cap.pace() == 0  # a sync starts: BURST_SECONDS of credit banked, no more
        machine.work(10.0)
        # 10 s of CPU in 10 s of wall time earned 5 s; with the 1 s banked,
        # 4 s are owed: 8 s of pause at 0.5 CPU seconds per second.
        assert cap.pace() == pytest.approx((10.0 - 10 * 0.5 - BURST_SECONDS * 0.5) / 0.5)


def test_only_background_threads_are_paced_and_100_is_no_cap() -> None:
    machine = _Machine()
    cap = machine.cap(10, cpus=1)
    cap.pace()
    machine.work(5.0)
    assert cap.pace() == 0  # not marked: a query's sync, say
    with cap.background():
        cap.pace()
        machine.work(5.0)
        assert cap.pace() > 0
        seen: list[float] = []
        other = threading.Thread(target=lambda: seen.append(cap.pace()))
        machine.work(5.0)
        other.start()
        other.join()
        assert seen == [0.0]  # the mark is per thread
    off = machine.cap(100, cpus=1)
    with off.background():
        off.pace()
        machine.work(50.0, cores=1.0)
        assert off.pace() == 0


def test_settings_file_and_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIDX_CONFIG_DIR", str(tmp_path))
    file = tmp_path / "daemon.json"
    assert load_settings() == DaemonSettings(cpu_cap_percent=50.0)
    file.write_text(json.dumps({"version": 1, "cpu_cap_percent": 30}))
    assert cpu_cap(None) == 30.0
    assert cpu_cap(80) == 80.0  # the option wins
    with pytest.raises(UsageError, match=r"--cpu-cap must be .* between 1 and 100"):
        cpu_cap(0)
    for bad, message in [
        ("{", "Cannot read the cidx daemon settings"),
        (json.dumps({"version": 2}), "not version 1 settings"),
        (json.dumps({"version": 1, "cpu_cap": 30}), "unknown keys: cpu_cap"),
        (json.dumps({"version": 1, "cpu_cap_percent": "30"}), "must be a number"),
        (json.dumps({"version": 1, "cpu_cap_percent": 300}), "between 1 and 100"),
    ]:
        file.write_text(bad)
        with pytest.raises(ConfigError, match=message) as caught:
            cpu_cap(None)
        assert str(file) in caught.value.message
