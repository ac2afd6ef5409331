"""`make demo`: start the local broker and round-trip one message (the streaming demo replaces this)."""
from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from confluent_kafka import Consumer, Producer

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    subprocess.run([str(REPO / "scripts" / "kafka-local"), "start"], check=True)
    topic = f"nids.demo.{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": "127.0.0.1:9092"})
    producer.produce(topic, key=b"hello", value=b"world")
    if producer.flush(10) != 0:
        print("demo: message not delivered", file=sys.stderr)
        return 1
    consumer = Consumer({"bootstrap.servers": "127.0.0.1:9092", "group.id": topic, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    try:
        for _ in range(30):
            msg = consumer.poll(1.0)
            if msg is not None and not msg.error():
                print(f"demo: round-tripped {msg.key()!r} → {msg.value()!r} through {topic}")
                return 0
    finally:
        consumer.close()
    print("demo: message not consumed back", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
