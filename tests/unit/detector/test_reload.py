"""The reloader on folders of its own and a stand-in loader: a new version is handed over once, a
refused one leaves the running model and is not tried again until the path points elsewhere."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from detector.reload import ModelReloader
from detector.values import LOADED, REFUSED, LiveModel
from nids_common.errors import ArtifactError
from nids_model.artifact import MANIFEST_FILE


def version(models: Path, name: str) -> Path:
    folder = models / name
    folder.mkdir(parents=True)
    (folder / MANIFEST_FILE).write_text("{}")
    return folder


def point(models: Path, name: str) -> None:
    link = models / "latest.tmp"
    link.symlink_to(name)
    os.replace(link, models / "latest")


def live(folder: Path) -> LiveModel:
    return LiveModel(model=None, version=folder.name, folder=folder.resolve())  # type: ignore[arg-type]


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def watcher(models: Path, current: Path, load: Callable[[Path], LiveModel]) -> tuple[ModelReloader, list[str]]:
    results: list[str] = []
    return ModelReloader(models / "latest", live(current), 0.05, load, on_result=results.append), results


def test_a_new_version_is_taken_once_and_reported_loaded(tmp_path: Path) -> None:
    first, second = version(tmp_path, "v1"), version(tmp_path, "v2")
    point(tmp_path, "v1")
    reloader, results = watcher(tmp_path, first, live)
    try:
        assert reloader.take() is None
        point(tmp_path, "v2")
        taken: list[LiveModel] = []

        def took() -> bool:
            ready = reloader.take()
            if ready is not None:
                taken.append(ready)
            return bool(taken)

        assert wait_for(took)
        assert [model.folder for model in taken] == [second.resolve()]
        assert reloader.take() is None
        assert results == [LOADED]
    finally:
        reloader.stop()


def test_a_refused_version_is_reported_and_not_tried_again_until_the_path_moves(tmp_path: Path) -> None:
    first = version(tmp_path, "v1")
    version(tmp_path, "bad")
    version(tmp_path, "v3")
    point(tmp_path, "v1")
    attempts: list[str] = []

    def load(folder: Path) -> LiveModel:
        attempts.append(folder.name)
        if folder.name == "bad":
            raise ArtifactError(f"{folder}: checksum mismatch")
        return live(folder)

    reloader, results = watcher(tmp_path, first, load)
    try:
        point(tmp_path, "bad")
        assert wait_for(lambda: results == [REFUSED])
        time.sleep(0.3)  # several polls
        assert attempts == ["bad"] and reloader.take() is None
        point(tmp_path, "v3")
        assert wait_for(lambda: attempts == ["bad", "v3"])
        assert wait_for(lambda: reloader.take() is not None)
        assert results == [REFUSED, LOADED]
    finally:
        reloader.stop()


def test_request_looks_at_once_without_polling(tmp_path: Path) -> None:
    first = version(tmp_path, "v1")
    version(tmp_path, "v2")
    point(tmp_path, "v1")
    reloader = ModelReloader(tmp_path / "latest", live(first), 0, live)  # 0: only when asked
    try:
        point(tmp_path, "v2")
        time.sleep(0.2)
        assert reloader.take() is None
        reloader.request()
        assert wait_for(lambda: reloader._ready is not None)
    finally:
        reloader.stop()
