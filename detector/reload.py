"""Hot reload: a new model goes live between batches, without a restart or a rebalance.

A background thread watches `detector.model` (normally `models/latest`, which nids-train and
nids-model re-point atomically) every `model_poll_s` seconds and whenever `request()` is called
(SIGHUP). A new version is loaded and checked off the hot path: checksum, signature and library
versions, the stream contract, the canary, then compiled and warmed up. Only then does the loop take
it, between two batches. A refused version leaves the running model in place; it is tried again only
once the path points somewhere else.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from detector.values import LOADED, REFUSED, LiveModel
from nids_common.errors import ArtifactError
from nids_model.artifact import load_checked, resolve

log = logging.getLogger("nids.detect.reload")
RELOAD_NICENESS = 10


def load_live(path: Path, threads: int, require_signature: bool = False) -> LiveModel:
    """A verified, canary-checked model, compiled and warmed up for `threads` scoring threads;
    signed with NIDS_MODEL_KEY when `require_signature`."""
    model, manifest, folder = load_checked(path, require_signature=require_signature)
    model.use_threads(threads)
    model.warm_up()
    return LiveModel(model, manifest.version, folder, manifest.reference_profile)


class ModelReloader:
    def __init__(
        self,
        path: Path,
        current: LiveModel,
        poll_seconds: float,
        load: Callable[[Path], LiveModel],
        on_result: Callable[[str], None] = lambda _result: None,
    ) -> None:
        """`on_result(LOADED)` when the loop takes a new model, `on_result(REFUSED)` when one fails
        its checks (on this reloader's thread)."""
        self.path, self.poll_seconds, self.load, self.on_result = path, poll_seconds, load, on_result
        self._seen = current.folder  # the folder the path pointed at when last looked at
        self._ready: LiveModel | None = None
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="nids-model-reload", daemon=True)
        self._thread.start()

    def request(self) -> None:
        """Look at the path now (SIGHUP): safe to call from a signal handler."""
        self._wake.set()

    def take(self) -> LiveModel | None:
        """The new model, once, if one is ready; the loop calls it between batches."""
        ready, self._ready = self._ready, None
        if ready is not None:
            self.on_result(LOADED)
        return ready

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        self._thread.join(5)

    def _watch(self) -> None:
        # Loading and checking a model is background work: on a small host it must not take CPU from
        # the loop and the scorer (Linux schedules threads on their own; nice applies to this one).
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), RELOAD_NICENESS)
        while not self._stopped.is_set():
            self._wake.wait(self.poll_seconds if self.poll_seconds > 0 else None)
            self._wake.clear()
            if not self._stopped.is_set():
                self._look()

    def _look(self) -> None:
        try:
            folder = resolve(self.path)
        except ArtifactError as exc:
            log.warning("model reload: %s", exc)
            return
        if folder == self._seen:
            return
        self._seen = folder
        try:
            live = self.load(folder)
        except ArtifactError as exc:
            self.on_result(REFUSED)
            log.error("model reload refused, the running model stays: %s", exc)
            return
        except Exception:
            self.on_result(REFUSED)
            log.exception("model reload of %s failed, the running model stays", folder)
            return
        log.info("model %s loaded and checked; it goes live after the current batch", live.version)
        self._ready = live
