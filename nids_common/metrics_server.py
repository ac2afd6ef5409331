"""The /metrics endpoint every service serves: its settings and the server (HTTP or HTTPS, optionally
only to holders of a client certificate)."""

from __future__ import annotations

import dataclasses
import logging
import ssl
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from nids_common.errors import NidsError

log = logging.getLogger("nids.metrics")


@dataclasses.dataclass(frozen=True)
class MetricsSettings:
    address: str = "0.0.0.0"
    port: int = 9108
    # HTTPS with this certificate and key (PEM files); empty: plain HTTP.
    tls_cert: str = ""
    tls_key: str = ""
    # With a CA (PEM), only clients holding a certificate it signed may scrape.
    tls_client_ca: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError("port: must be within 0..65535")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert, tls_key: give both or neither")
        if self.tls_client_ca and not self.tls_cert:
            raise ValueError("tls_client_ca: needs tls_cert and tls_key (client certificates only work over TLS)")
        for name in ("tls_cert", "tls_key", "tls_client_ca"):
            value = getattr(self, name)
            if value and not Path(value).is_file():
                raise ValueError(f"{name}: {value} is not a file")


def serve_metrics(settings: MetricsSettings, registry: CollectorRegistry) -> None:
    """Serve /metrics as `settings` say: off (port 0), HTTP, HTTPS, or HTTPS for holders of a client
    certificate signed by `tls_client_ca` only."""
    if not settings.port:
        return
    try:
        start_http_server(
            settings.port,
            addr=settings.address,
            registry=registry,
            certfile=settings.tls_cert or None,
            keyfile=settings.tls_key or None,
            client_cafile=settings.tls_client_ca or None,
            client_auth_required=bool(settings.tls_client_ca),
        )
    except (OSError, ssl.SSLError) as exc:
        raise NidsError(f"cannot serve metrics on {settings.address}:{settings.port}: {exc}") from None
    scheme = "https" if settings.tls_cert else "http"
    log.info("metrics on %s://%s:%d/metrics", scheme, settings.address, settings.port)


@dataclasses.dataclass(frozen=True)
class KafkaClientMetrics:
    """The Kafka-client metrics every stream service exports alike (the checkpoint and the client
    health update them): `nids_delivery_failures_total`, `nids_kafka_errors_total{code}`, `nids_broker_up`,
    `nids_producer_renewals_total`, `nids_partitions_below_min_insync{topic}`."""

    delivery_failures: Counter
    kafka_errors: Counter
    broker_up: Gauge
    producer_renewals: Counter
    below_min_insync: Gauge

    @classmethod
    def declare(cls, registry: CollectorRegistry, outputs: str) -> KafkaClientMetrics:
        """`outputs`: what the service produces, for the delivery failures' help text."""
        metrics = cls(
            Counter("nids_delivery_failures", f"{outputs} not delivered.", registry=registry),
            Counter("nids_kafka_errors", "Errors reported by the Kafka client, by code.", ["code"], registry=registry),
            Gauge("nids_broker_up", "1 while the Kafka cluster is reachable, else 0.", registry=registry),
            Counter(
                "nids_producer_renewals",
                "Transactional producers replaced in-process after being fenced or failing (exactly_once).",
                registry=registry,
            ),
            Gauge(
                "nids_partitions_below_min_insync",
                "Output partitions with fewer in-sync replicas than min.insync.replicas when a write failed: "
                "the brokers refuse writes to them (NOT_ENOUGH_REPLICAS).",
                ["topic"],
                registry=registry,
            ),
        )
        metrics.broker_up.set(1)
        return metrics
