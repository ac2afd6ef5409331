"""Least privilege on the stream: one principal per role, and the Kafka ACLs that give it only the
rights its service needs. `nids-topics --acls` creates them; `scripts/kafka-local start --secure`
runs that, and the integration tests grant their own topics the same way.

| role     | may                                                                               |
|----------|-----------------------------------------------------------------------------------|
| replay   | write the flow topic                                                              |
| detector | read the flow topic in its group; write alerts, dead letters and verdicts; its     |
|          | transactional ids (exactly_once)                                                  |
| alerts   | read the alert and incident topics, in groups of its own prefix                   |
| incidents| read the alert topic in its group; create, write and read its own topics (incidents,|
|          | dead letters, repartition, changelog); its transactional ids (exactly_once)        |

Writes need DESCRIBE on the topic too (metadata); idempotent and transactional producers get
IDEMPOTENT_WRITE from WRITE on a topic (Kafka 2.8+), so no cluster-wide right is granted. A service
may read the settings of the topics it writes (DESCRIBE_CONFIGS): when writes are refused for want of
in-sync replicas, it says which partitions are short of their min.insync.replicas.
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

from nids_common.contract import ALERTS_GROUP_PREFIX, IncidentStageNames, Topics


@dataclasses.dataclass(frozen=True)
class Principals:
    """The SASL user names of the roles (`scripts/kafka-local start --secure` creates these)."""

    replay: str = "replay"
    detector: str = "detector"
    alerts: str = "alerts"
    incidents: str = "incidents"


def role_acls(
    topics: Topics,
    detector_group: str,
    transactional_id_prefix: str,
    principals: Principals = Principals(),
    alerts_group_prefix: str = ALERTS_GROUP_PREFIX,
    incidents: IncidentStageNames | None = None,
) -> list[AclBinding]:
    """The ACL bindings of every role for these topics and groups; `incidents` names what
    nids-incidents reads and writes (default: the contract's names, reading `topics.alerts`)."""
    stage = IncidentStageNames(alerts=topics.alerts) if incidents is None else incidents
    replay, detector, alerts, incident = (f"User:{name}" for name in dataclasses.astuple(principals))
    topic, group, transactional = ResourceType.TOPIC, ResourceType.GROUP, ResourceType.TRANSACTIONAL_ID
    detector_writes = (topics.alerts, topics.dead_letter, topics.verdicts)
    incident_topics = stage.written_topics()
    grants = [
        (replay, topic, topics.flows, AclOperation.WRITE),
        (detector, topic, topics.flows, AclOperation.READ),
        (detector, group, detector_group, AclOperation.READ),
        *((detector, topic, name, AclOperation.WRITE) for name in detector_writes),
        *((detector, topic, name, AclOperation.DESCRIBE_CONFIGS) for name in detector_writes),
        (alerts, topic, topics.alerts, AclOperation.READ),
        (alerts, topic, stage.incidents, AclOperation.READ),  # nids-alerts --incidents
        (incident, topic, stage.alerts, AclOperation.READ),
        (incident, group, stage.group_id, AclOperation.READ),
        # The changelog reader is assigned its partitions and commits nothing: it only finds its coordinator.
        (incident, group, stage.restore_group, AclOperation.DESCRIBE),
        *((incident, topic, name, operation) for name in incident_topics for operation in _OWNED),
        *((incident, topic, name, AclOperation.READ) for name in (stage.repartition_topic, stage.changelog_topic)),
    ]
    bindings = [_literal(principal, kind, name, operation) for principal, kind, name, operation in grants]
    described = {(principal, name) for principal, kind, name, _ in grants if kind is topic}
    bindings += [_literal(principal, topic, name, AclOperation.DESCRIBE) for principal, name in sorted(described)]
    bindings += [
        _prefixed(detector, transactional, transactional_id_prefix, AclOperation.WRITE),
        _prefixed(detector, transactional, transactional_id_prefix, AclOperation.DESCRIBE),
        _prefixed(alerts, group, alerts_group_prefix, AclOperation.READ),
        _prefixed(incident, transactional, stage.transactional_id_prefix, AclOperation.WRITE),
        _prefixed(incident, transactional, stage.transactional_id_prefix, AclOperation.DESCRIBE),
    ]
    return bindings


# What nids-incidents may do to each topic it writes: it creates the ones missing at start, as it does
# on a broker without ACLs, and nothing else of the cluster's.
_OWNED = (AclOperation.CREATE, AclOperation.WRITE, AclOperation.DESCRIBE_CONFIGS)


def _literal(principal: str, kind: ResourceType, name: str, operation: AclOperation) -> AclBinding:
    return AclBinding(kind, name, ResourcePatternType.LITERAL, principal, "*", operation, AclPermissionType.ALLOW)


def _prefixed(principal: str, kind: ResourceType, prefix: str, operation: AclOperation) -> AclBinding:
    return AclBinding(kind, prefix, ResourcePatternType.PREFIXED, principal, "*", operation, AclPermissionType.ALLOW)
