"""nids-replay: replay UNSW-NB15 flows (files of either format, or synthetic) onto Kafka as live traffic."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
from collections.abc import Iterator, Sequence

import pandas as pd

from nids_common.cli import EXIT_CODES_HELP, run, setup_logging
from nids_common.config import describe_json
from nids_common.errors import EXIT_FAILURE, EXIT_OK, UsageError
from nids_common.kafka import Refusals
from nids_common.progress import progress
from producer.config import DEFAULT_PATH, ProducerConfig, load
from producer.replay import ReplaySummary, file_chunks, make_producer, read_ahead, replay, synthetic_chunks

log = logging.getLogger("nids.replay")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nids-replay", description=__doc__, epilog=EXIT_CODES_HELP)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", action="append", metavar="PATH", help="UNSW-NB15 CSV, either format (repeatable)")
    source.add_argument("--synthetic", action="store_true", help="UNSW-NB15-shaped synthetic flows of every class")
    p.add_argument("--config", default=str(DEFAULT_PATH), help=f"producer config (default: {DEFAULT_PATH})")
    p.add_argument("--topic", help="flows topic (default: topics.flows from the config)")
    p.add_argument("--rate", type=float, help="flows per second (default: unthrottled)")
    p.add_argument("--speedup", type=float, help="replay raw files' Stime gaps this many times faster")
    p.add_argument("--limit", type=int, help="stop after this many flows")
    p.add_argument("--loop", action="store_true", help="start over at the end of the files")
    p.add_argument("--shuffle", action="store_true", help="shuffle flows within each chunk")
    p.add_argument("--seed", type=int, help="seed for --shuffle and --synthetic")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run(lambda: replay_command(args), "nids-replay")


def effective_config(args: argparse.Namespace) -> ProducerConfig:
    config = load(args.config)
    given = {
        name: value
        for name, value in (("rate", args.rate), ("speedup", args.speedup), ("limit", args.limit), ("seed", args.seed))
        if value is not None
    }
    try:
        replay_settings = dataclasses.replace(
            config.replay, **given, loop=args.loop or config.replay.loop, shuffle=args.shuffle or config.replay.shuffle
        )
    except ValueError as exc:
        raise UsageError(f"--{exc}") from None
    if replay_settings.rate and replay_settings.speedup:
        raise UsageError("--rate and --speedup exclude each other")
    topics = dataclasses.replace(config.topics, flows=args.topic) if args.topic else config.topics
    return dataclasses.replace(config, replay=replay_settings, topics=topics)


def replay_command(args: argparse.Namespace) -> int:
    config = effective_config(args)
    setup_logging(config.log_level)
    log.info("effective config: %s", describe_json(config))
    settings = config.replay
    if args.synthetic:
        chunks = read_ahead(synthetic_chunks(settings.seed))
        if not settings.limit and not settings.loop and not settings.rate:
            raise UsageError("--synthetic is endless: give --limit, --rate or --loop")
    else:
        chunks = read_ahead(file_chunks(args.data, settings.chunk_rows, settings.loop, settings.shuffle, settings.seed))
    try:
        return replay_chunks(config, args, chunks)
    finally:
        chunks.close()  # stops and joins the read-ahead thread, whatever ended the replay


def replay_chunks(config: ProducerConfig, args: argparse.Namespace, chunks: Iterator[pd.DataFrame]) -> int:
    settings = config.replay
    refusals = Refusals(config.kafka.librdkafka, {"topic": config.topics.flows})
    producer = make_producer(config, refusals)
    state = {"running": True}

    def stop(signum: int, _frame: object) -> None:
        if not state["running"]:
            raise KeyboardInterrupt
        state["running"] = False

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    with progress() as bar:
        task = bar.add_task("replaying", total=settings.limit or None, info="")

        def show(summary: ReplaySummary) -> None:
            bar.update(task, completed=summary.produced, info=f"{summary.rate:,.0f} flows/s")

        summary = replay(
            chunks,
            producer,
            config.topics.flows,
            limit=settings.limit,
            rate=settings.rate,
            speedup=settings.speedup,
            running=lambda: state["running"],
            on_progress=show,
            refusals=refusals,
        )
    refusals.raise_first()
    print(
        f"nids-replay: produced {summary.produced:,} flows to {config.topics.flows} in {summary.seconds:.1f} s "
        f"({summary.rate:,.0f} flows/s) after {summary.startup_seconds:.1f} s reading; "
        f"delivered {summary.delivered:,}, failed {summary.failed:,}"
        + (f"; first error: {summary.first_error}" if summary.first_error else "")
    )
    return EXIT_FAILURE if summary.failed or summary.first_error else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
