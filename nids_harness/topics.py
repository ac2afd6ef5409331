"""The contract's topics under a name of a test's or benchmark's own."""

from __future__ import annotations

from nids_common.contract import DEFAULT_PARTITIONS, Topics
from nids_common.kafka import ensure_topics


def make_topics(bootstrap: str, name: str, partitions: int = DEFAULT_PARTITIONS) -> Topics:
    """The contract's topics named after `name`, created with `partitions` partitions each."""
    topics = Topics.named(name, partitions)
    ensure_topics({"bootstrap.servers": bootstrap}, topics.partition_counts(), configs=topics.configs())
    return topics


def topics_env(topics: Topics) -> dict[str, str]:
    """The environment that points a service at `topics` (NIDS_TOPICS_*)."""
    return {
        "NIDS_TOPICS_FLOWS": topics.flows,
        "NIDS_TOPICS_ALERTS": topics.alerts,
        "NIDS_TOPICS_DEAD_LETTER": topics.dead_letter,
        "NIDS_TOPICS_VERDICTS": topics.verdicts,
    }
