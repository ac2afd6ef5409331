"""The detector's config: the metrics endpoint's TLS settings are checked when they load."""

from __future__ import annotations

from pathlib import Path

import pytest

from nids_common.metrics_server import MetricsSettings


def test_tls_needs_a_certificate_and_its_key(tmp_path: Path) -> None:
    cert, key, ca = (tmp_path / name for name in ("cert.pem", "key.pem", "ca.pem"))
    for path in (cert, key, ca):
        path.write_text("-----BEGIN-----\n")
    MetricsSettings(tls_cert=str(cert), tls_key=str(key), tls_client_ca=str(ca))
    with pytest.raises(ValueError, match="give both or neither"):
        MetricsSettings(tls_cert=str(cert))
    with pytest.raises(ValueError, match="client certificates only work over TLS"):
        MetricsSettings(tls_client_ca=str(ca))
    with pytest.raises(ValueError, match=r"tls_key: .*missing.pem is not a file"):
        MetricsSettings(tls_cert=str(cert), tls_key=str(tmp_path / "missing.pem"))
