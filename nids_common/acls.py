"""Least privilege on the stream: one principal per role, and the Kafka ACLs that give it only the
rights its service needs. `nids-topics --acls` creates them; `scripts/kafka-local start --secure`
runs that, and the integration tests grant their own topics the same way.

| role     | may                                                                               |
|----------|-----------------------------------------------------------------------------------|
| replay   | write the flow topic                                                              |
| detector | read the flow topic in its group; write alerts, dead letters and verdicts; its     |
|          | transactional ids (exactly_once)                                                  |
| alerts   | read the alert topic, in groups of its own prefix                                 |

Writes need DESCRIBE on the topic too (metadata); idempotent and transactional producers get
IDEMPOTENT_WRITE from WRITE on a topic (Kafka 2.8+), so no cluster-wide right is granted.
"""

from __future__ import annotations

import dataclasses

from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from nids_common.contract import ALERTS_GROUP_PREFIX, Topics


@dataclasses.dataclass(frozen=True)
class Principals:
    """The SASL user names of the three roles (`scripts/kafka-local start --secure` creates these)."""

    replay: str = "replay"
    detector: str = "detector"
    alerts: str = "alerts"


def role_acls(
    topics: Topics,
    detector_group: str,
    transactional_id_prefix: str,
    principals: Principals = Principals(),
    alerts_group_prefix: str = ALERTS_GROUP_PREFIX,
) -> list[AclBinding]:
    """The ACL bindings of every role for these topics and groups."""
    replay, detector, alerts = (f"User:{name}" for name in dataclasses.astuple(principals))
    topic, group, transactional = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.TRANSACTIONAL_ID
    grants = [
        (replay, topic, topics.flows, AclOperation.WRITE),
        (detector, topic, topics.flows, AclOperation.READ),
        (detector, group, detector_group, AclOperation.READ),
        *((detector, topic, name, AclOperation.WRITE) for name in (topics.alerts, topics.dead_letter, topics.verdicts)),
        (alerts, topic, topics.alerts, AclOperation.READ),
    ]
    bindings = [_literal(principal, kind, name, operation) for principal, kind, name, operation in grants]
    bindings += [
        _literal(principal, topic, name, AclOperation.DESCRIBE) for principal, kind, name, _ in grants if kind is topic
    ]
    bindings += [
        _prefixed(detector, transactional, transactional_id_prefix, AclOperation.WRITE),
        _prefixed(detector, transactional, transactional_id_prefix, AclOperation.DESCRIBE),
        _prefixed(alerts, group, alerts_group_prefix, AclOperation.READ),
    ]
    return bindings


def _literal(principal: str, kind: ResourceType, name: str, operation: AclOperation) -> AclBinding:
    return AclBinding(kind, name, ResourcePatternType.LITERAL, principal, "*", operation, AclPermissionType.ALLOW)


def _prefixed(principal: str, kind: ResourceType, prefix: str, operation: AclOperation) -> AclBinding:
    return AclBinding(kind, prefix, ResourcePatternType.PREFIXED, principal, "*", operation, AclPermissionType.ALLOW)
