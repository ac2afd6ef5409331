"""The replay: pacing by rate and by event time, looped files cached, read-ahead order and errors."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from producer.replay import Pacer


def _without_created(registry: CollectorRegistry) -> list[str]:
    return [line for line in generate_latest(registry).decode().splitlines() if "_created" not in line]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


def test_pacer_holds_the_rate() -> None:
    clock = FakeClock()
    pacer = Pacer(rate=1000, speedup=0, clock=clock, sleep=clock.sleep)
    for sent in range(0, 10_001, 200):
        pacer.wait(sent, None)
    assert abs(clock.now - 100.0 - 10.0) < 1e-9


def test_pacer_follows_event_time_with_speedup() -> None:
    clock = FakeClock()
    pacer = Pacer(rate=0, speedup=10, clock=clock, sleep=clock.sleep)
    for event_time in (1000.0, 1000.0, 1005.0, 1020.0):
        pacer.wait(0, event_time)
    assert abs(clock.now - 102.0) < 1e-9


def test_unthrottled_pacer_never_sleeps() -> None:
    clock = FakeClock()
    pacer = Pacer(rate=0, speedup=0, clock=clock, sleep=clock.sleep)
    for sent in range(0, 100_000, 200):
        pacer.wait(sent, 5.0)
    assert clock.slept == 0


def test_looped_files_are_cached_and_read_ahead_preserves_order(tmp_path) -> None:
    from producer.replay import file_chunks, read_ahead
    from tests.fixtures import flows_with_identity, write_partitioned

    path = write_partitioned(flows_with_identity(120, seed=3), tmp_path / "f.csv")
    chunks = read_ahead(file_chunks([path], chunk_rows=50, loop=True, shuffle=False, seed=0))
    ids = [chunk["id"].tolist() for _, chunk in zip(range(7), chunks)]
    assert [len(c) for c in ids] == [50, 50, 20, 50, 50, 20, 50]
    assert ids[0] == ids[3] == ids[6] and ids[0][0] == 1


def test_read_ahead_raises_the_readers_error() -> None:
    import pytest

    from producer.replay import read_ahead

    def broken():
        yield 1
        raise ValueError("bad chunk")

    reader = read_ahead(broken())
    assert next(reader) == 1
    with pytest.raises(ValueError, match="bad chunk"):
        next(reader)
