"""A missing component (broker, Prometheus, docker-compose) skips an integration test on a
developer's machine but fails it under CI=true: CI never passes by skipping."""

from __future__ import annotations

import pytest

from tests.integration.helpers import unavailable


@pytest.mark.parametrize("value", ["true", "1", "yes", "TRUE"])
def test_under_ci_a_missing_component_fails(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="prometheus not installed"):
        unavailable("prometheus not installed")


def test_elsewhere_it_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="prometheus not installed"):
        unavailable("prometheus not installed")
