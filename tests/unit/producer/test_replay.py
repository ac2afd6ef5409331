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


class FakeProducer:
    """Takes what produce_all hands it; `refuse_after` raises BufferError forever from that message on."""

    def __init__(self, refuse_after: int | None = None) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.refuse_after = refuse_after
        self.flushed = False

    def produce(self, topic, value=None, key=None, partition=-1, on_delivery=None, headers=None) -> None:
        if self.refuse_after is not None and len(self.sent) >= self.refuse_after:
            raise BufferError("queue full")
        self.sent.append((key, value))

    def poll(self, _timeout: float) -> int:
        return 0

    def flush(self, _timeout: float) -> int:
        self.flushed = True
        return 0


def test_replay_sends_each_flow_once_keyed_by_run_and_position_up_to_the_limit() -> None:
    import orjson

    from producer.replay import replay
    from tests.fixtures import flows_with_identity

    chunks = [flows_with_identity(1500, seed=s) for s in (1, 2, 3)]
    producer = FakeProducer()
    progress = []
    summary = replay(
        chunks, producer, "flows", limit=3200, run_id="run", on_progress=lambda s: progress.append(s.produced)
    )
    assert summary.produced == summary.delivered == len(producer.sent) == 3200
    assert [key for key, _ in producer.sent] == [f"run-{n}" for n in range(3200)]
    flow = orjson.loads(producer.sent[1600][1])
    assert flow["flow_id"] == "run-1600"
    assert flow["ts"] == float(chunks[1]["stime"].iloc[100])
    assert progress == [1000, 1500, 2500, 3000, 3200]  # after each encoded slice
    assert producer.flushed and summary.failed == 0


def test_encoded_slices_take_the_send_time_without_stime() -> None:
    from producer.replay import ENCODE_ROWS, encoded_slices
    from tests.fixtures import flows_with_identity

    chunk = flows_with_identity(ENCODE_ROWS + 10, seed=4).drop(columns=["stime"])
    slices = list(encoded_slices(chunk, "r", first_id=7))
    assert [len(s.keys) for s in slices] == [ENCODE_ROWS, 10]
    assert slices[0].keys[0] == "r-7" and slices[1].keys[-1] == f"r-{ENCODE_ROWS + 16}"
    assert all(s.event_times is None for s in slices)
    assert len(slices[1].payloads) == 10


def test_replay_stops_when_asked_and_when_the_queue_stays_full(monkeypatch) -> None:
    import nids_common.kafka
    from producer.replay import PACING_STEP, replay
    from tests.fixtures import flows_with_identity

    chunks = [flows_with_identity(1000, seed=5)]
    producer = FakeProducer()
    calls = iter(range(10_000))
    summary = replay(chunks, producer, "flows", running=lambda: next(calls) < 3)
    assert summary.produced == len(producer.sent) < 1000
    assert summary.produced % PACING_STEP == 0

    monkeypatch.setitem(nids_common.kafka.produce_all.__kwdefaults__, "timeout", 0.05)
    full = FakeProducer(refuse_after=150)
    summary = replay(chunks, full, "flows", run_id="r")
    assert summary.produced == 150
    assert summary.first_error and "stayed full" in summary.first_error


def test_the_producer_takes_the_replay_defaults_under_the_configs_librdkafka(monkeypatch) -> None:
    import producer.replay
    from nids_common.config import KafkaSettings
    from producer.config import ProducerConfig

    created: list[dict] = []
    monkeypatch.setattr(producer.replay, "Producer", created.append)
    config = ProducerConfig(kafka=KafkaSettings("broker:9092", {"linger.ms": 5, "security.protocol": "SASL_SSL"}))
    producer.replay.make_producer(config)
    settings = created[0]
    assert settings["bootstrap.servers"] == "broker:9092"
    assert settings["linger.ms"] == 5 and settings["security.protocol"] == "SASL_SSL"
    assert settings["compression.type"] == producer.replay.PRODUCER_DEFAULTS["compression.type"]
    assert settings["delivery.report.only.error"] is True


def test_closing_a_read_ahead_stops_and_joins_its_thread_mid_stream() -> None:
    import threading

    from producer.replay import read_ahead, synthetic_chunks

    chunks = read_ahead(synthetic_chunks(seed=1, chunk_rows=500))  # endless
    next(chunks)
    assert any(thread.name == "replay-read-ahead" for thread in threading.enumerate())
    chunks.close()
    assert not any(thread.name == "replay-read-ahead" for thread in threading.enumerate())
