"""nids-detect: score the flow topic in micro-batches, emit alerts and dead letters, serve metrics."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from confluent_kafka.admin import AdminClient
from threadpoolctl import threadpool_limits

from detector.clients import client_health, make_consumer, make_producer
from detector.config import DEFAULT_PATH, DetectorConfig, load
from detector.metrics import DetectorMetrics
from detector.reload import ModelReloader, load_live
from detector.service import Detector
from detector.values import LiveModel
from nids_common.cli import EXIT_CODES_HELP, run, setup_logging
from nids_common.config import describe_json
from nids_common.errors import EXIT_OK
from nids_common.metrics_server import serve_metrics
from nids_common.replicas import WriteAvailability
from nids_common.stream_clients import renewing_checkpoint

log = logging.getLogger("nids.detect")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nids-detect", description=__doc__, epilog=EXIT_CODES_HELP)
    p.add_argument("--config", default=str(DEFAULT_PATH), help=f"detector config (default: {DEFAULT_PATH})")
    p.add_argument("--model", help="model folder (default: detector.model from the config)")
    p.add_argument("--group", help="consumer group id (default: detector.group_id from the config)")
    p.add_argument("--metrics-port", type=int, help="Prometheus port (default: metrics.port; 0 disables)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run(lambda: detect_command(args), "nids-detect")


def effective_config(args: argparse.Namespace) -> DetectorConfig:
    config = load(args.config)
    settings = config.detector
    if args.model:
        settings = dataclasses.replace(settings, model=Path(args.model))
    if args.group:
        settings = dataclasses.replace(settings, group_id=args.group)
    metrics = (
        dataclasses.replace(config.metrics, port=args.metrics_port) if args.metrics_port is not None else config.metrics
    )
    return dataclasses.replace(config, detector=settings, metrics=metrics)


def build_detector(config: DetectorConfig, live: LiveModel, metrics: DetectorMetrics) -> Detector:
    """A detector with its Kafka clients, checkpoint, reloader and scorer thread built from `config`."""
    settings = config.detector
    health = client_health(config, metrics)
    consumer = make_consumer(
        config, health.on_error, lambda stats: metrics.record_statistics(stats, config.topics.flows), health.on_commit
    )
    checkpoint = renewing_checkpoint(
        settings.delivery, consumer, lambda: make_producer(config, health.on_producer_error), metrics, health
    )
    reloader = ModelReloader(
        settings.model,
        live,
        settings.model_poll_s,
        lambda path: load_live(path, settings.model_threads, settings.require_signed_model),
        on_result=metrics.record_reload,
    )
    scorer = ThreadPoolExecutor(
        1, thread_name_prefix="nids-scorer", initializer=threadpool_limits, initargs=(settings.model_threads, "openmp")
    )
    topics = config.topics
    outputs = [topics.alerts, topics.dead_letter, *([topics.verdicts] if settings.emit_verdicts else [])]
    checkpoint.watcher = WriteAvailability(AdminClient(config.kafka.client_config()), outputs, metrics.below_min_insync)
    return Detector(config, live, metrics, consumer, checkpoint, health, reloader, scorer)


# The scorer thread takes the GIL back between its GIL-free tree walks; the loop thread, decoding in
# Python, hands it over only every switch interval (5 ms by default), several times per batch.
GIL_SWITCH_INTERVAL_S = 0.0005


def detect_command(args: argparse.Namespace) -> int:
    config = effective_config(args)
    setup_logging(config.log_level)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    log.info("effective config: %s", describe_json(config))
    live = load_live(config.detector.model, config.detector.model_threads, config.detector.require_signed_model)
    log.info("model %s verified, canary-checked and loaded (%s)", live.version, live.model.describe())
    metrics = DetectorMetrics()
    serve_metrics(config.metrics, metrics.registry)
    detector = build_detector(config, live, metrics)

    def on_signal(signum: int, _frame: object) -> None:
        # The first signal lets the current batch finish, flush and commit; a second exits at once.
        detector.stop()
        signal.signal(signum, signal.SIG_DFL)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # SIGHUP: look for a new model now (nids-model promote/rollback, or a finished nids-train).
    signal.signal(signal.SIGHUP, lambda _signum, _frame: detector.reloader.request())
    detector.run()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
