"""nids-incidents: correlate the alert stream into incidents (or, with --offline, a file of alerts)."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import msgspec
from confluent_kafka.admin import AdminClient

from incidents.changelog import ChangelogReader
from incidents.clients import (
    client_health,
    ensure_incident_topics,
    make_changelog_consumer,
    make_consumer,
    make_producer,
    partition_count,
)
from incidents.config import DEFAULT_PATH, IncidentsConfig, load
from incidents.metrics import IncidentMetrics
from incidents.offline import read_alerts, run_offline
from incidents.service import IncidentService
from nids_common.cli import EXIT_CODES_HELP, run, setup_logging
from nids_common.config import describe_json
from nids_common.contract import Incident
from nids_common.errors import EXIT_OK
from nids_common.metrics_server import serve_metrics
from nids_common.replicas import WriteAvailability
from nids_common.stream_clients import renewing_checkpoint

log = logging.getLogger("nids.incidents")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nids-incidents", description=__doc__, epilog=EXIT_CODES_HELP)
    p.add_argument("--config", default=str(DEFAULT_PATH), help=f"incidents config (default: {DEFAULT_PATH})")
    p.add_argument("--offline", metavar="FILE", type=Path, help="read alerts from a JSON-lines file, not Kafka")
    p.add_argument(
        "--partitions",
        type=int,
        default=1,
        help="offline: spread keys over this many partitions as the stream's repartition topic does (default: 1)",
    )
    p.add_argument("--all", action="store_true", help="offline: every record (open, update, closed), not only closed")
    p.add_argument("--json", action="store_true", help="one JSON object per line, for piping")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    command = offline_command if args.offline is not None else stream_command
    return run(lambda: command(args), "nids-incidents")


def build_service(config: IncidentsConfig, metrics: IncidentMetrics) -> IncidentService:
    """The service with its Kafka clients, checkpoint and changelog reader built from `config`."""
    health = client_health(config, metrics)
    consumer = make_consumer(config, health)
    checkpoint = renewing_checkpoint(
        config.incidents.delivery, consumer, lambda: make_producer(config, health), metrics, health
    )
    changelog = ChangelogReader(make_changelog_consumer(config, health.on_error), config.changelog_topic)
    partitions = partition_count(checkpoint.producer, config.repartition_topic)
    checkpoint.watcher = WriteAvailability(
        AdminClient(config.kafka.client_config()), config.output_topics(), metrics.below_min_insync
    )
    return IncidentService(config, metrics, consumer, checkpoint, health, changelog, partitions)


def stream_command(args: argparse.Namespace) -> int:
    config = load(args.config)
    setup_logging(config.log_level)
    log.info("effective config: %s", describe_json(config))
    ensure_incident_topics(config)
    metrics = IncidentMetrics(rules=[rule.name for rule in config.incidents.suppress])
    serve_metrics(config.metrics, metrics.registry)
    service = build_service(config, metrics)

    def on_signal(signum: int, _frame: object) -> None:
        # The first signal lets the current batch finish and commit; a second exits at once.
        service.stop()
        signal.signal(signum, signal.SIG_DFL)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    service.run()
    return EXIT_OK


def offline_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    config = load(args.config)
    encoder = msgspec.json.Encoder()
    for incident in run_offline(read_alerts(args.offline), config.incidents, args.partitions):
        if not (args.all or incident.state == "closed"):
            continue
        out.write(encoder.encode(incident).decode() if args.json else render(incident))
        out.write("\n")
    return EXIT_OK


def render(incident: Incident) -> str:
    classes = ", ".join(f"{name} {n}" for name, n in incident.alerts_by_attack_cat.items())
    extra = "".join(
        f"  {label} {n}" for label, n in (("suppressed", incident.suppressed), ("late", incident.late_alerts)) if n
    )
    closed = f" ({incident.close_reason})" if incident.close_reason else ""
    return (
        f"{_time(incident.first_ts)}–{_time(incident.last_ts)}  {incident.state}{closed:<15} {incident.priority:<8} "
        f"{incident.key.text}  {incident.alerts} alerts [{classes}]{extra}  {incident.incident_id}#{incident.revision}"
    )


def _time(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


if __name__ == "__main__":
    sys.exit(main())
