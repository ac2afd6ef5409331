"""Least privilege: each role's ACLs give it exactly its service's rights; refusals name who was refused what."""

from __future__ import annotations

from confluent_kafka import KafkaError
from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType  # type: ignore[attr-defined]

from nids_common.acls import Principals, role_acls
from nids_common.contract import ALERTS_GROUP_PREFIX, IncidentStageNames, Topics
from nids_common.kafka import Refusals, access_denied

TOPICS = Topics.named("t")


def _rights(principal: str) -> set[tuple[str, str, str, str]]:
    return {
        (b.restype.name, b.name, b.resource_pattern_type.name, b.operation.name)
        for b in role_acls(TOPICS, "g", "nids-detect.g.")
        if b.principal == principal
    }


def test_each_role_holds_only_its_services_rights() -> None:
    topic, group = ResourceType.TOPIC.name, ResourceType.GROUP.name
    literal, prefixed = ResourcePatternType.LITERAL.name, ResourcePatternType.PREFIXED.name
    write, read, describe = AclOperation.WRITE.name, AclOperation.READ.name, AclOperation.DESCRIBE.name
    assert _rights("User:replay") == {(topic, "t.flows", literal, write), (topic, "t.flows", literal, describe)}
    assert _rights("User:alerts") == {
        (topic, "t.alerts", literal, read),
        (topic, "t.alerts", literal, describe),
        (topic, "nids.incidents", literal, read),
        (topic, "nids.incidents", literal, describe),
        (group, ALERTS_GROUP_PREFIX, prefixed, read),
    }
    detector = _rights("User:detector")
    assert (topic, "t.flows", literal, read) in detector and (group, "g", literal, read) in detector
    assert {(topic, name, literal, write) for name in ("t.alerts", "t.dlq", "t.verdicts")} <= detector
    assert ("TRANSACTIONAL_ID", "nids-detect.g.", prefixed, write) in detector
    assert (topic, "t.flows", literal, write) not in detector
    assert not any(op in ("ALL", "CREATE", "DELETE", "ALTER") for *_, op in detector)
    assert {(topic, name, literal, "DESCRIBE_CONFIGS") for name in ("t.alerts", "t.dlq", "t.verdicts")} <= detector


def test_the_incidents_role_reads_alerts_and_owns_only_its_own_topics() -> None:
    topic, group, transactional = ResourceType.TOPIC.name, ResourceType.GROUP.name, "TRANSACTIONAL_ID"
    literal, prefixed = ResourcePatternType.LITERAL.name, ResourcePatternType.PREFIXED.name
    owned = ("nids.incidents", "nids.alerts.dlq", "nids-incidents-repartition", "nids-incidents-changelog")
    expected = {
        (topic, "t.alerts", literal, "READ"),
        (topic, "t.alerts", literal, "DESCRIBE"),
        (group, "nids-incidents", literal, "READ"),
        (group, "nids-incidents-restore", literal, "DESCRIBE"),
        *((topic, name, literal, op) for name in owned for op in ("CREATE", "WRITE", "DESCRIBE", "DESCRIBE_CONFIGS")),
        *((topic, name, literal, "READ") for name in owned[2:]),
        (transactional, "nids-incidents.nids-incidents.", prefixed, "WRITE"),
        (transactional, "nids-incidents.nids-incidents.", prefixed, "DESCRIBE"),
    }
    assert _rights("User:incidents") == expected
    names = IncidentStageNames(alerts="a", incidents="i", dead_letter="d", group_id="soc")
    renamed = {
        (b.restype.name, b.name, b.operation.name)
        for b in role_acls(TOPICS, "g", "p.", incidents=names)
        if b.principal == "User:incidents"
    }
    assert (topic, "a", "READ") in renamed and (topic, "i", "CREATE") in renamed
    assert (transactional, "nids-incidents.soc.", "WRITE") in renamed
    assert not any(name.startswith("t.") or name == "nids.incidents" for _, name, _ in renamed)


def test_principals_can_be_renamed() -> None:
    principals = Principals(replay="sensor", detector="nids", alerts="soc", incidents="triage")
    bindings = role_acls(TOPICS, "g", "p.", principals)
    assert {b.principal for b in bindings} == {"User:sensor", "User:nids", "User:soc", "User:triage"}


def test_a_refusal_names_the_principal_the_operation_and_the_resource() -> None:
    denied = access_denied(
        KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED), "User:detector", "WRITE", {"topic": "nids.flows"}
    )
    assert denied is not None and denied.exit_code == 2
    assert str(denied).startswith("User:detector may not WRITE topic 'nids.flows' (TOPIC_AUTHORIZATION_FAILED)")
    assert access_denied(KafkaError(KafkaError._TRANSPORT), "User:x", "WRITE", {}) is None
    credentials = access_denied(KafkaError(KafkaError._AUTHENTICATION, "bad password"), "User:x", "use", {})
    assert credentials is not None and "refused the credentials" in str(credentials)


def test_refusals_keep_the_first_and_take_the_principal_from_the_settings() -> None:
    refusals = Refusals({"sasl.username": "replay"}, {"topic": "f", "group": "g"})
    assert not refusals.note(None, "READ") and not refusals.note(KafkaError(KafkaError._TRANSPORT), "READ")
    assert refusals.first is None
    assert refusals.note(KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED), "READ")
    assert refusals.note(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED), "READ", "other")
    assert str(refusals.first).startswith("User:replay may not READ group 'g'")
    assert Refusals({}, {}).who == "User:ANONYMOUS"
