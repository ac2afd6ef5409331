"""A live alert stream for the nids-incidents benches: alerts as the detector writes them, event time now."""

from __future__ import annotations

import threading
import time

import msgspec
from confluent_kafka import Producer

from nids_common.community_id import community_id
from nids_common.contract import Alert, Source
from nids_common.schema import ATTACK_CLASSES
from nids_harness.incident_stream import CATEGORIES

# The attackers change this often: each slot has its own source addresses.
SLOT_S = 30.0
TICK_S = 0.1


def address(index: int) -> str:
    return f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}"


class LiveAlerts:
    """Alerts at `rate` a second, event time now, from the `keys_per_slot` source addresses of the
    current slot in turn (rate × SLOT_S of them: a new key per alert)."""

    def __init__(self, bootstrap: str, topic: str, rate: int, keys_per_slot: int) -> None:
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "enable.idempotence": True})
        self.topic, self.rate, self.keys_per_slot = topic, rate, keys_per_slot
        self.sent = 0
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.started = time.time()

    def start(self) -> None:
        self.started = time.time()
        self.thread.start()

    def stop(self) -> None:
        self.running = False
        self.thread.join(30)
        self.producer.flush(30)

    def _run(self) -> None:
        encoder = msgspec.json.Encoder()
        per_tick = max(1, round(self.rate * TICK_S))
        next_tick = time.monotonic()
        while self.running:
            now = time.time()
            slot = int((now - self.started) // SLOT_S)
            for _ in range(per_tick):
                source = address(slot * self.keys_per_slot + self.sent % self.keys_per_slot)
                category = CATEGORIES[self.sent % len(CATEGORIES)]
                flow_id = f"live-{self.sent}"
                sport, dsport = 1024 + self.sent % 60000, (80, 443, 21, 53)[self.sent % 4]
                destination = f"149.171.126.{10 + self.sent % 10}"
                alert = Alert(
                    flow_id=flow_id,
                    is_attack=True,
                    attack_cat=category,
                    attack_probability=0.5 + (self.sent % 50) / 100,
                    model_version="bench",
                    detected_at=now,
                    ts=now - 0.05,
                    source=Source("bench.flows", self.sent % 6, self.sent),
                    class_probabilities={name: 0.9 if name == category else 0.1 / 9 for name in ATTACK_CLASSES},
                    srcip=source,
                    sport=sport,
                    dstip=destination,
                    dsport=dsport,
                    community_id=community_id(source, sport, destination, dsport, "tcp"),
                )
                self.producer.produce(self.topic, encoder.encode(alert), flow_id)
                self.sent += 1
            self.producer.poll(0)
            next_tick += TICK_S
            time.sleep(max(0.0, next_tick - time.monotonic()))
