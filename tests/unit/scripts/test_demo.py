"""scripts/demo.py's view and summary without a broker: the detector and its /metrics are stand-ins."""

from __future__ import annotations

import importlib.util
import subprocess
import threading
import time
from types import ModuleType
from typing import Any

import pytest

from nids_harness.checkout import REPO
from nids_harness.metrics import Samples


@pytest.fixture
def demo() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo", REPO / "scripts" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class RunningProcess:
    returncode = None

    def poll(self) -> None:
        return None


def scrapes(consumed: int) -> Samples:
    return {
        ("nids_flows_consumed_total", ()): float(consumed),
        ("nids_alerts_total", (("attack_cat", "DoS"),)): consumed / 10,
        ("nids_invalid_records_total", (("reason", "not_json"),)): 2.0,
    }


def test_ctrl_c_during_the_view_leaves_the_summary_the_last_scrape(
    demo: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    scraped = iter([scrapes(1000), scrapes(2500), scrapes(4000)])
    # The detector's endpoint; nids-incidents' answers nothing yet.
    monkeypatch.setattr(demo, "scrape", lambda port: next(scraped) if port == demo.METRICS_PORT else {})
    ticks = iter(range(3))
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        # time.sleep is the process's: other threads (a checkpoint's watchdog left by an earlier
        # test) sleep as usual; only the view's seconds are counted.
        if threading.current_thread() is not threading.main_thread():
            real_sleep(seconds)
            return
        # The third second of the view: Ctrl-C.
        if next(ticks) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(demo.time, "sleep", sleep)
    watch = demo.Watch()
    process: Any = RunningProcess()
    with pytest.raises(KeyboardInterrupt):
        watch.run([("nids-detect", process, "detector.log"), ("nids-incidents", process, "incidents.log")], duration=0)
    assert watch.samples == scrapes(2500)
    line = demo.summary(watch.samples, watch.incident_samples, interrupted=True, seconds=3, detector_code=0)
    assert "interrupted after 3 s: consumed 2,500 flows, alerts 250, incident records 0, invalid 2" in line
    assert line.count("detector exit code 0") == 1


def test_the_scrape_at_shutdown_replaces_the_view_s_last_one(demo: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    watch = demo.Watch()
    watch.samples = scrapes(1000)
    monkeypatch.setattr(demo, "scrape", lambda port: scrapes(1200) if port == demo.METRICS_PORT else {})
    assert watch.scrape() and watch.samples == scrapes(1200)

    def refused(_port: int) -> Samples:
        raise ConnectionRefusedError

    monkeypatch.setattr(demo, "scrape", refused)
    assert not watch.scrape() and watch.samples == scrapes(1200)


@pytest.mark.parametrize("which", ["nids-detect", "nids-incidents"])
def test_a_service_that_exits_ends_the_view_with_its_code_and_log(
    demo: ModuleType, monkeypatch: pytest.MonkeyPatch, which: str
) -> None:
    monkeypatch.setattr(demo.time, "sleep", lambda _seconds: None)
    exited = subprocess.Popen(["false"])
    exited.wait()
    running: Any = RunningProcess()
    services = [
        (name, exited if name == which else running, f"{name}.log") for name in ("nids-detect", "nids-incidents")
    ]
    with pytest.raises(demo.DemoError, match=rf"{which} exited \(1\); see .*{which}\.log"):
        demo.Watch().run(services, duration=0)
