"""docker-compose.yml is valid for Docker Compose, checked by the real tool (no daemon needed)."""

from __future__ import annotations

import shutil
import subprocess

from tests.integration.helpers import REPO, unavailable


def test_docker_compose_config_validates() -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        unavailable("docker-compose not installed (scripts/ensure-system-deps installs it)")
    result = subprocess.run(
        [tool, "-f", str(REPO / "docker-compose.yml"), "config", "-q"], capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    services = subprocess.run(
        [tool, "-f", str(REPO / "docker-compose.yml"), "config", "--services"], capture_output=True, text=True, cwd=REPO
    ).stdout.split()
    assert set(services) == {"kafka", "init-topics", "trainer", "detector", "replay", "prometheus", "grafana"}
