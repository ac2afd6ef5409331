"""`make demo`: the whole pipeline on this machine, watched live.

Starts the local Kafka broker (or uses KAFKA_BOOTSTRAP), trains a model if there is none (on
UNSW-NB15 files in data/ when present, else on synthetic flows), creates the topics, starts nids-detect
nids-incidents and nids-replay as separate processes, and shows flows/s, alerts by class, per-class
detection rate, lag and latency from the detector's own Prometheus endpoint, and the open incidents
beside the alert rate (nids-incidents' endpoint). Ctrl-C stops everything and prints a summary.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from confluent_kafka import Message
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from detector.alerts_cli import endpoints
from detector.incident_board import COLUMNS, IncidentBoard
from incidents.config import INCIDENTS_METRICS_PORT
from nids_common.contract import INCIDENTS_TOPIC, Alert, Topics, alert_decoder, incident_decoder
from nids_common.errors import ArtifactError
from nids_common.kafka import ensure_topics
from nids_harness.assignment import wait_for_assignment
from nids_harness.checkout import KAFKA_LOCAL, REPO
from nids_harness.errors import HarnessError
from nids_harness.metrics import Samples, metrics_url, scrape, total
from nids_harness.reading import LiveReader
from nids_model.artifact import verify

BIN = Path(sys.executable).parent
LOGS = REPO / ".cache" / "demo"
METRICS_PORT = int(os.environ.get("NIDS_METRICS_PORT", "9108"))
METRICS_URL = metrics_url(METRICS_PORT)
# nids-incidents' /metrics; its config reads NIDS_METRICS_PORT too, so the demo gives it its own.
INCIDENTS_PORT = int(os.environ.get("DEMO_INCIDENTS_PORT", str(INCIDENTS_METRICS_PORT)))
TOPICS = Topics()  # the services' defaults: the demo runs them with config/*.yaml
STATUS_EVERY_S = 10.0


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def start_broker() -> tuple[str, bool]:
    """The broker's address, and whether this demo started it (and so stops it at the end)."""
    if os.environ.get("KAFKA_BOOTSTRAP"):
        step(f"using the Kafka broker at {os.environ['KAFKA_BOOTSTRAP']}")
        return os.environ["KAFKA_BOOTSTRAP"], False
    step("starting the local Kafka broker (scripts/kafka-local)")
    result = subprocess.run([KAFKA_LOCAL, "start"], check=True, capture_output=True, text=True)
    print(result.stdout.strip(), flush=True)
    return "127.0.0.1:" + os.environ.get("KAFKA_LOCAL_PORT", "9092"), "already running" not in result.stdout


def data_files(given: str | None) -> list[str]:
    if given:
        return [given]
    return [str(p) for p in sorted((REPO / "data").glob("*.csv"))]


def ensure_model(files: list[str], env: dict[str, str]) -> None:
    try:
        verify(REPO / "models" / "latest")
        step("using the model in models/latest")
        return
    except ArtifactError as exc:
        if (REPO / "models" / "latest").exists():
            step(f"models/latest cannot be used ({exc}); training a new one")
    if files:
        step(f"no model yet: training on {', '.join(files)} (a few minutes; progress in {LOGS / 'train.log'})")
        command = [
            str(BIN / "nids-train"),
            "--out",
            "models",
            *[part for f in files for part in ("--data", f)],
        ]
    else:
        step(
            "no model and no dataset in data/: training a quick model on 30,000 synthetic UNSW-NB15-shaped flows "
            "(see README: 'Getting the real dataset')"
        )
        command = [
            str(BIN / "nids-train"),
            "--out",
            "models",
            "--synthetic",
            "30000",
            "--config",
            "config/training-quick.yaml",
        ]
    with open(LOGS / "train.log", "w") as log:
        subprocess.run(command, check=True, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for (n, labels), value in samples.items():
        if n == name:
            key = dict(labels)[label]
            out[key] = out.get(key, 0.0) + value
    return out


def latency_p99(samples: Samples) -> str:
    buckets = sorted(
        (
            (float(dict(labels)["le"]), v)
            for (n, labels), v in samples.items()
            if n == "nids_end_to_end_latency_seconds_bucket"
        ),
        key=lambda b: b[0],
    )
    count = buckets[-1][1] if buckets else 0
    if not count:
        return "–"
    bound = next(le for le, c in buckets if c >= 0.99 * count)
    return "> 10 s" if bound == float("inf") else f"≤ {bound * 1000:.0f} ms"


def alert_tail(bootstrap: str, recent: deque[Alert]) -> LiveReader:
    """The alerts of this run as a downstream reader sees them (committed transactions only), the
    latest first in `recent`."""

    def keep(message: Message, _arrived: float) -> None:
        recent.appendleft(alert_decoder.decode(message.value() or b""))

    return LiveReader(bootstrap, TOPICS.alerts, keep, from_start=False, poll_seconds=0.5)


def incident_tail(bootstrap: str, board: IncidentBoard) -> LiveReader:
    """The incidents topic from its start (compacted: the state of every incident), into `board`."""

    def keep(message: Message, _arrived: float) -> None:
        board.add(incident_decoder.decode(message.value() or b""))

    return LiveReader(bootstrap, INCIDENTS_TOPIC, keep, from_start=True, poll_seconds=0.5)


def incidents_view(watch: Watch, span: float) -> Table:
    """Open incidents beside the alert rate: what a person reads instead of every alert."""
    alerts = watch.rate("nids_alerts_total", span)
    records = watch.rate("nids_incident_records_total", span, incidents=True)
    reduction = f"{alerts / records:,.0f} alerts per incident record" if records else "no incident records this second"
    title = (
        f"incidents: {total(watch.incident_samples, 'nids_incidents_open'):,.0f} open; "
        f"{alerts:,.0f} alerts/s → {records:,.1f} incident records/s ({reduction}); "
        f"suppressed {total(watch.incident_samples, 'nids_alerts_suppressed_total'):,.0f} "
        "(nids-alerts --incidents shows them too)"
    )
    table = Table(title=title, expand=True)
    for column in COLUMNS:
        table.add_column(column)
    for cells in watch.board.rows(time.time(), limit=8):
        table.add_row(*cells)
    return table


def view(watch: Watch, span: float) -> Group:
    samples, previous, recent, started = watch.samples, watch.previous, watch.recent, watch.started

    def rate(name: str) -> float:
        return watch.rate(name, span)

    head = Table.grid(padding=(0, 3))
    head.add_row(
        f"[bold]{rate('nids_flows_consumed_total'):,.0f}[/] flows/s",
        f"[bold red]{rate('nids_alerts_total'):,.0f}[/] alerts/s",
        f"scored [bold]{total(samples, 'nids_flows_scored_total'):,.0f}[/]",
        f"invalid {total(samples, 'nids_invalid_records_total'):,.0f}",
        f"lag {total(samples, 'nids_consumer_lag'):,.0f}",
        f"latency p99 {latency_p99(samples)}",
        f"up {time.monotonic() - started:,.0f} s",
    )
    head.add_row(f"model [bold]{model_line(samples)}[/]")
    classes = Table(title="per class (since detector start)", expand=True)
    for column in ("class", "alerts", "alerts/s", "flows with truth", "detection rate", "precision"):
        classes.add_column(column, justify="right" if column != "class" else "left")
    alert_counts = by_label(samples, "nids_alerts_total", "attack_cat")
    actual = by_label(samples, "nids_classifications_total", "actual")
    predicted = by_label(samples, "nids_classifications_total", "predicted")
    for cls in sorted(actual, key=lambda c: -actual[c]):
        hits = total(samples, "nids_classifications_total", actual=cls, predicted=cls)
        per_second = (
            (alert_counts.get(cls, 0) - by_label(previous, "nids_alerts_total", "attack_cat").get(cls, 0)) / span
            if previous
            else 0
        )
        classes.add_row(
            cls,
            f"{alert_counts.get(cls, 0):,.0f}" if cls != "Normal" else "–",
            f"{per_second:,.0f}" if cls != "Normal" else "–",
            f"{actual[cls]:,.0f}",
            f"{hits / actual[cls]:.1%}" if actual[cls] else "–",
            f"{hits / predicted[cls]:.1%}" if predicted.get(cls) else "–",
        )
    latest = Table(title="latest alerts (nids-alerts tails them too)", expand=True)
    for column in ("attack_cat", "p(attack)", "who → whom", "flow_id", "source"):
        latest.add_column(column)
    for alert in list(recent):
        source = alert.source
        latest.add_row(
            alert.attack_cat,
            f"{alert.attack_probability:.3f}",
            endpoints(alert),
            alert.flow_id,
            f"{source.topic}/{source.partition}@{source.offset}",
        )
    footer = f"metrics: {METRICS_URL} and {metrics_url(INCIDENTS_PORT)}   logs: {LOGS}/   Ctrl-C stops everything"
    return Group(Panel(head, title="nids demo"), classes, incidents_view(watch, span), latest, footer)


class DemoError(Exception):
    """The demo cannot go on; everything it started is stopped."""


def interrupt_on_signal(signum: int, _frame: object) -> None:
    # SIGTERM (kill, a CI timeout) and SIGHUP (a closed terminal) stop the demo as Ctrl-C does: the
    # children sit in their own sessions and would otherwise outlive it. SIGINT is set here too: a
    # shell starts a background job with SIGINT ignored, and Python keeps an ignored SIGINT ignored,
    # so a demo started from one (a CI step, `nohup`) would run on through `kill -INT`.
    raise KeyboardInterrupt(signal.Signals(signum).name)


def start_process(command: list[str], log_name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    # Own sessions: the terminal's Ctrl-C reaches only this process, which then stops the children
    # with one SIGTERM each (a second signal would make the detector exit without committing).
    with open(LOGS / log_name, "w") as log:
        return subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def status_line(samples: Samples, incident_samples: Samples, started: float) -> str:
    return (
        f"[{time.monotonic() - started:5.0f} s] scored {total(samples, 'nids_flows_scored_total'):,.0f}, "
        f"alerts {total(samples, 'nids_alerts_total'):,.0f}, "
        f"incident records {total(incident_samples, 'nids_incident_records_total'):,.0f} "
        f"({total(incident_samples, 'nids_incidents_open'):,.0f} open), "
        f"invalid {total(samples, 'nids_invalid_records_total'):,.0f}, "
        f"lag {total(samples, 'nids_consumer_lag'):,.0f}, latency p99 {latency_p99(samples)}, "
        f"model {model_line(samples)}"
    )


def model_line(samples: Samples) -> str:
    """The live model version and the reloads so far (nids-model promote / rollback while it runs)."""
    live = [dict(labels)["version"] for (name, labels), value in samples.items() if name == "nids_model_info" and value]
    loaded = total(samples, "nids_model_reloads_total", result="loaded")
    refused = total(samples, "nids_model_reloads_total", result="refused")
    return f"{', '.join(live) or '?'} (reloads: {loaded:,.0f} loaded, {refused:,.0f} refused)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    parser.add_argument("--data", help="a UNSW-NB15 CSV to replay (default: data/*.csv, else synthetic flows)")
    parser.add_argument(
        "--rate", type=float, default=float(os.environ.get("DEMO_RATE", "3000")), help="flows/s to replay"
    )
    parser.add_argument(
        "--duration", type=float, default=0, help="stop after this many seconds (default: until Ctrl-C)"
    )
    args = parser.parse_args(argv)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt_on_signal)
    LOGS.mkdir(parents=True, exist_ok=True)
    watch = Watch()
    interrupted = False
    detector: subprocess.Popen[bytes] | None = None
    try:
        with contextlib.ExitStack() as running:
            # Unwound in reverse order: the replay stops first, then the detector, then the broker.
            running.callback(signal.signal, signal.SIGINT, signal.SIG_IGN)
            bootstrap, started_broker = start_broker()
            if started_broker:
                running.callback(subprocess.run, [KAFKA_LOCAL, "stop"], check=False)
            env = {**os.environ, "NIDS_KAFKA_BOOTSTRAP": bootstrap}
            files = data_files(args.data)
            ensure_model(files, env)
            ensure_topics({"bootstrap.servers": bootstrap}, TOPICS.partition_counts(), configs=TOPICS.configs())
            step(
                f"starting nids-detect (metrics on {METRICS_URL}) and nids-replay at {args.rate:,.0f} flows/s from "
                + (", ".join(files) if files else "synthetic flows")
            )
            detector = start_process([str(BIN / "nids-detect")], "detector.log", env)
            running.callback(stop_process, detector, 60)
            incidents_env = {**env, "NIDS_METRICS_PORT": str(INCIDENTS_PORT)}
            incidents = start_process([str(BIN / "nids-incidents")], "incidents.log", incidents_env)
            running.callback(stop_process, incidents, 60)
            # The summary counts what the detector did by the time the replay stopped.
            running.callback(watch.scrape)
            try:
                # Replay starts once the detector has loaded its model and joined its group, so the
                # first flows do not queue up behind the start-up and skew the latency shown.
                wait_for_assignment(METRICS_PORT, detector)
            except HarnessError as exc:
                raise DemoError(f"{exc}; see {LOGS / 'detector.log'}") from None
            source = [part for f in files for part in ("--data", f)] if files else ["--synthetic"]
            replay = start_process(
                [str(BIN / "nids-replay"), *source, "--loop", "--rate", str(args.rate)], "replay.log", env
            )
            running.callback(stop_process, replay, 30)
            alerts = alert_tail(bootstrap, watch.recent)
            alerts.start()
            running.callback(alerts.stop)
            board = incident_tail(bootstrap, watch.board)
            board.start()
            running.callback(board.stop)
            watch.run(
                [("nids-detect", detector, "detector.log"), ("nids-incidents", incidents, "incidents.log")],
                args.duration,
            )
    except KeyboardInterrupt:
        interrupted = True
    except DemoError as exc:
        print(f"make demo: {exc}", file=sys.stderr)
        return 1
    code = detector.returncode if detector is not None else None
    print(
        "\n" + summary(watch.samples, watch.incident_samples, interrupted, time.monotonic() - watch.started, code),
        flush=True,
    )
    return 0 if code in (0, -signal.SIGTERM) else 1


def summary(
    samples: Samples, incident_samples: Samples, interrupted: bool, seconds: float, detector_code: int | None
) -> str:
    alerts = total(samples, "nids_alerts_total")
    records = total(incident_samples, "nids_incident_records_total")
    reduction = f" ({alerts / records:,.0f} alerts per incident record)" if records else ""
    return (
        f"nids demo {'interrupted' if interrupted else 'finished'} after {seconds:,.0f} s: "
        f"consumed {total(samples, 'nids_flows_consumed_total'):,.0f} flows, "
        f"alerts {alerts:,.0f}, incident records {records:,.0f}{reduction}, "
        f"invalid {total(samples, 'nids_invalid_records_total'):,.0f}; "
        f"detector exit code {detector_code}. Logs in {LOGS}/"
    )


class Watch:
    """The live view of the run. Its latest scrape lives here, not in a return value, so the summary
    has the run's numbers however the view ends: its duration, Ctrl-C or a signal."""

    def __init__(self) -> None:
        self.samples: Samples = {}
        self.previous: Samples = {}
        self.incident_samples: Samples = {}
        self.previous_incidents: Samples = {}
        self.recent: deque[Alert] = deque(maxlen=8)
        self.board = IncidentBoard()
        self.started = time.monotonic()

    def scrape(self) -> bool:
        """Take the detector's and nids-incidents' metrics now; False (the last ones kept) while the
        detector does not answer."""
        with contextlib.suppress(OSError):
            self.previous_incidents, self.incident_samples = self.incident_samples, scrape(INCIDENTS_PORT)
        try:
            self.previous, self.samples = self.samples, scrape(METRICS_PORT)
        except OSError:
            return False
        return True

    def rate(self, name: str, span: float, incidents: bool = False) -> float:
        """Per second of `name` between the last two scrapes."""
        now, before = (self.incident_samples, self.previous_incidents) if incidents else (self.samples, self.previous)
        return (total(now, name) - total(before, name)) / span if before and span > 0 else 0.0

    def run(self, services: Sequence[tuple[str, subprocess.Popen[bytes], str]], duration: float) -> None:
        """The live view until `duration` seconds have passed (0: until interrupted) or one of the
        `services` (name, process, log file) exits."""
        self.started = time.monotonic()
        last = printed = self.started
        console = Console()
        with Live(refresh_per_second=2, transient=False, console=console) as live:
            while not duration or time.monotonic() - self.started < duration:
                time.sleep(1)
                for name, process, log_name in services:
                    if process.poll() is not None:
                        raise DemoError(f"{name} exited ({process.returncode}); see {LOGS / log_name}")
                if not self.scrape():
                    continue
                now = time.monotonic()
                if console.is_terminal:
                    live.update(view(self, now - last))
                elif now - printed >= STATUS_EVERY_S:
                    # Not a terminal (a pipe, a log): a plain line every 10 s instead of a live view.
                    print(status_line(self.samples, self.incident_samples, self.started), flush=True)
                    printed = now
                last = now


if __name__ == "__main__":
    sys.exit(main())
