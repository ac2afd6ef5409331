"""The broker `scripts/kafka-local` runs: where its state lives, and killing it the hard way."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from nids_harness.checkout import KAFKA_LOCAL, REPO
from nids_harness.errors import HarnessError
from nids_harness.waiting import wait_until


def broker_home(secure: bool = False) -> Path:
    """The folder of the local broker's data, logs, pid file (and secure credentials), as the script
    chooses it: KAFKA_LOCAL_HOME, else .kafka-local (secure: .kafka-local/secure) in the checkout."""
    given = os.environ.get("KAFKA_LOCAL_HOME")
    if given:
        return Path(given)
    return REPO / ".kafka-local" / ("secure" if secure else "")


def sigkill_and_restart() -> None:
    """SIGKILL the local (plain) broker, as a crash would, and start it again."""
    pid = int((broker_home() / "broker.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    # SIGKILL is delivered asynchronously: start again only once the JVM is gone and its port free.
    if not wait_until(lambda: not _alive(pid), 30, poll=0.1):
        raise HarnessError(f"broker pid {pid} still alive 30 s after SIGKILL")
    subprocess.run([KAFKA_LOCAL, "start"], check=True, stdout=subprocess.DEVNULL)


def _alive(pid: int) -> bool:
    # A zombie (killed, not yet reaped by the script that started it) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
