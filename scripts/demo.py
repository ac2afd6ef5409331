"""`make demo`: the whole pipeline on this machine, watched live.

Starts the local Kafka broker (or uses KAFKA_BOOTSTRAP), trains a model if there is none (on
UNSW-NB15 files in data/ when present, else on synthetic flows), creates the topics, starts nids-detect
and nids-replay as separate processes, and shows flows/s, alerts by class, per-class detection rate,
lag and latency from the detector's own Prometheus endpoint. Ctrl-C stops everything and prints a summary.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from confluent_kafka import Consumer
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from detector.alerts_cli import endpoints
from nids_common.contract import Alert, Topics, alert_decoder
from nids_common.errors import ArtifactError
from nids_common.kafka import ensure_topics
from nids_model.artifact import verify

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LOGS = REPO / ".cache" / "demo"
METRICS_PORT = int(os.environ.get("NIDS_METRICS_PORT", "9108"))
METRICS_URL = f"http://127.0.0.1:{METRICS_PORT}/metrics"
TOPICS = Topics()  # the services' defaults: the demo runs them with config/*.yaml
Sample = tuple[str, tuple[tuple[str, str], ...]]  # (metric name, sorted labels)


def step(message: str) -> None:
    print(f"==> {message}", flush=True)


def start_broker() -> tuple[str, bool]:
    """The broker's address, and whether this demo started it (and so stops it at the end)."""
    if os.environ.get("KAFKA_BOOTSTRAP"):
        step(f"using the Kafka broker at {os.environ['KAFKA_BOOTSTRAP']}")
        return os.environ["KAFKA_BOOTSTRAP"], False
    step("starting the local Kafka broker (scripts/kafka-local)")
    result = subprocess.run(
        [str(REPO / "scripts" / "kafka-local"), "start"], check=True, capture_output=True, text=True
    )
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


def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(METRICS_URL, timeout=2) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: dict[Sample, float], name: str, **match: str) -> float:
    return sum(
        v for (n, labels), v in samples.items() if n == name and all(dict(labels).get(k) == w for k, w in match.items())
    )


def by_label(samples: dict[Sample, float], name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for (n, labels), value in samples.items():
        if n == name:
            key = dict(labels)[label]
            out[key] = out.get(key, 0.0) + value
    return out


def latency_p99(samples: dict[Sample, float]) -> str:
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


class AlertTail(threading.Thread):
    """The latest alerts, as a downstream reader sees them (committed transactions only)."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(daemon=True)
        self.recent: deque[Alert] = deque(maxlen=8)
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"demo-view-{os.getpid()}",
                "auto.offset.reset": "latest",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
            }
        )
        self.running = True

    def run(self) -> None:
        self.consumer.subscribe([TOPICS.alerts])
        while self.running:
            for message in self.consumer.consume(200, timeout=0.5):
                if message.error() is None:
                    self.recent.appendleft(alert_decoder.decode(message.value() or b""))
        self.consumer.close()

    def stop(self) -> None:
        self.running = False
        self.join(5)


def view(
    samples: dict[Sample, float], previous: dict[Sample, float], span: float, alerts: AlertTail, started: float
) -> Group:
    def rate(name: str) -> float:
        return (total(samples, name) - total(previous, name)) / span if previous else 0.0

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
    recent = Table(title="latest alerts (nids-alerts tails them too)", expand=True)
    for column in ("attack_cat", "p(attack)", "who → whom", "flow_id", "source"):
        recent.add_column(column)
    for alert in list(alerts.recent):
        source = alert.source
        recent.add_row(
            alert.attack_cat,
            f"{alert.attack_probability:.3f}",
            endpoints(alert),
            alert.flow_id,
            f"{source.topic}/{source.partition}@{source.offset}",
        )
    footer = f"metrics: {METRICS_URL}   logs: {LOGS}/   Ctrl-C stops everything"
    return Group(Panel(head, title="nids demo"), classes, recent, footer)


def wait_for_assignment(detector: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Replay starts once the detector has loaded its model and joined its group, so the first
    flows do not queue up behind the start-up and skew the latency shown."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if detector.poll() is not None:
            raise DemoError(f"nids-detect exited ({detector.returncode}); see {LOGS / 'detector.log'}")
        try:
            if any(name == "nids_consumer_lag" for name, _ in scrape()):
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise DemoError(f"nids-detect did not join its group within {timeout:.0f} s; see {LOGS / 'detector.log'}")


class DemoError(Exception):
    """The demo cannot go on; everything it started is stopped."""


def interrupt_on_signal(signum: int, _frame: object) -> None:
    # SIGTERM (kill, a CI timeout) and SIGHUP (a closed terminal) stop the demo as Ctrl-C does: the
    # children sit in their own sessions and would otherwise outlive it.
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


def status_line(samples: dict[Sample, float], started: float) -> str:
    return (
        f"[{time.monotonic() - started:5.0f} s] scored {total(samples, 'nids_flows_scored_total'):,.0f}, "
        f"alerts {total(samples, 'nids_alerts_total'):,.0f}, "
        f"invalid {total(samples, 'nids_invalid_records_total'):,.0f}, "
        f"lag {total(samples, 'nids_consumer_lag'):,.0f}, latency p99 {latency_p99(samples)}, "
        f"model {model_line(samples)}"
    )


def model_line(samples: dict[Sample, float]) -> str:
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
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt_on_signal)
    LOGS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    samples: dict[Sample, float] = {}
    interrupted = False
    detector: subprocess.Popen[bytes] | None = None
    try:
        with contextlib.ExitStack() as running:
            # Unwound in reverse order: the replay stops first, then the detector, then the broker.
            running.callback(signal.signal, signal.SIGINT, signal.SIG_IGN)
            bootstrap, started_broker = start_broker()
            if started_broker:
                running.callback(subprocess.run, [str(REPO / "scripts" / "kafka-local"), "stop"], check=False)
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
            wait_for_assignment(detector)
            source = [part for f in files for part in ("--data", f)] if files else ["--synthetic"]
            replay = start_process(
                [str(BIN / "nids-replay"), *source, "--loop", "--rate", str(args.rate)], "replay.log", env
            )
            running.callback(stop_process, replay, 30)
            alerts = AlertTail(bootstrap)
            alerts.start()
            running.callback(alerts.stop)
            started = time.monotonic()
            samples = watch(detector, alerts, started, args.duration)
    except KeyboardInterrupt:
        interrupted = True
    except DemoError as exc:
        print(f"make demo: {exc}", file=sys.stderr)
        return 1
    code = detector.returncode if detector is not None else None
    print(
        f"\nnids demo {'interrupted' if interrupted else 'finished'} after {time.monotonic() - started:,.0f} s: "
        f"consumed {total(samples, 'nids_flows_consumed_total'):,.0f} flows, "
        f"alerts {total(samples, 'nids_alerts_total'):,.0f}, "
        f"invalid {total(samples, 'nids_invalid_records_total'):,.0f}; "
        f"detector exit code {code}. Logs in {LOGS}/"
    )
    return 0 if code in (0, -signal.SIGTERM) else 1


def watch(detector: subprocess.Popen[bytes], alerts: AlertTail, started: float, duration: float) -> dict[Sample, float]:
    """The live view until `duration` seconds have passed (0: until interrupted); the last scrape."""
    samples: dict[Sample, float] = {}
    previous: dict[Sample, float] = {}
    last = time.monotonic()
    console = Console()
    with Live(refresh_per_second=2, transient=False, console=console) as live:
        while not duration or time.monotonic() - started < duration:
            time.sleep(1)
            if detector.poll() is not None:
                raise DemoError(f"nids-detect exited ({detector.returncode}); see {LOGS / 'detector.log'}")
            try:
                samples = scrape()
            except OSError:
                continue  # the detector is still loading its model
            now = time.monotonic()
            if console.is_terminal:
                live.update(view(samples, previous, now - last, alerts, started))
            elif int(now - started) % 10 == 0:
                # Not a terminal (a pipe, a log): a plain line every 10 s instead of a live view.
                print(status_line(samples, started), flush=True)
            previous, last = samples, now
    return samples


if __name__ == "__main__":
    sys.exit(main())
