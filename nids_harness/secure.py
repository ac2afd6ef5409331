"""The secure local broker (`scripts/kafka-local start --secure`): each role's credentials, topics and
ACLs of a run's own."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from detector.config import DetectorConfig, DetectorSettings
from nids_common.acls import role_acls
from nids_common.contract import Topics
from nids_common.kafka import create_acls, ensure_topics
from nids_harness.incident_stream import incident_names
from nids_harness.local_broker import broker_home
from nids_harness.topics import topics_env


def secure_role_env(role: str) -> dict[str, str]:
    """A role's NIDS_KAFKA_* settings, as `set -a; . FILE` exports them from the file the script writes."""
    lines = (broker_home(secure=True) / "credentials" / f"{role}.env").read_text().splitlines()
    return {name: value.strip("'") for name, _, value in (line.partition("=") for line in lines if line)}


@dataclasses.dataclass(frozen=True)
class SecureBroker:
    """The secure local broker: SASL_SSL on `bootstrap`, its CA and certificates under `tls`, and
    per role (admin, replay, detector, alerts, incidents) the environment file the script wrote."""

    bootstrap: str

    @property
    def tls(self) -> Path:
        return broker_home(secure=True) / "tls"

    def env(self, role: str) -> dict[str, str]:
        """The role's NIDS_KAFKA_* variables."""
        return secure_role_env(role)

    def client_config(self, role: str, **overrides: Any) -> dict[str, Any]:
        """librdkafka settings for a client of `role`."""
        env = self.env(role)
        return {
            "bootstrap.servers": env["NIDS_KAFKA_BOOTSTRAP"],
            **json.loads(env["NIDS_KAFKA_LIBRDKAFKA"]),
            **overrides,
        }

    def make_topics(self, topics: Topics) -> None:
        """`topics`, created as admin (a super user: the authorizer runs, every check passes)."""
        ensure_topics(self.client_config("admin"), topics.partition_counts(), configs=topics.configs())

    def grant(self, name: str, partitions: int = 2) -> tuple[Topics, str]:
        """Topics and a detector group of the run's own, created as admin, with every role's ACLs on
        them (nids-incidents' on `incident_names(name, …)`, topics it creates itself): each service
        then runs with only its role's rights."""
        topics = Topics.named(name, partitions)
        self.make_topics(topics)
        group = f"{name}-detector"
        prefix = DetectorConfig(topics=topics, detector=DetectorSettings(group_id=group)).transactional_id_prefix
        incidents = incident_names(name, topics.alerts)
        create_acls(self.client_config("admin"), role_acls(topics, group, prefix, incidents=incidents))
        return topics, group


def service_env(broker: SecureBroker, role: str, topics: Topics, **settings: str) -> dict[str, str]:
    """The environment a service runs in as `role`: the role's credentials, the run's topics and
    `settings` (NIDS_* names without the prefix, e.g. DETECTOR_GROUP_ID)."""
    return {
        **os.environ,
        **broker.env(role),
        **topics_env(topics),
        **{f"NIDS_{name}": value for name, value in settings.items()},
    }
