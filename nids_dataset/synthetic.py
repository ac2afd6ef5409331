"""Synthetic UNSW-NB15-shaped flows, drawn per class from summary statistics of the real data.

`synthetic_stats.json` (made by scripts/make_synthetic_stats.py) holds, per attack_cat, the class's
share, its most common (proto, service, state) triples, 41 quantiles of every numeric feature and the
rank correlation of their normal scores. Flows are drawn from that Gaussian copula, so features keep
their class's marginals and their monotone dependencies (sbytes with spkts, sttl with ct_state_ttl).
No row of the dataset is stored.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr

from nids_common.schema import ATTACK_CAT, CATEGORICAL_FEATURES, FEATURES, LABEL, NORMAL, NUMERIC_FEATURES

STATS_FILE = "synthetic_stats.json"

# The UNSW-NB15 testbed's address plan (Moustafa and Slay, 2015): attack traffic from 175.45.176.0-3,
# normal clients in 59.166.0.0-9, servers in 149.171.126.0-19 (normal traffic reaches .0-.9, attacks
# the victims at .10-.19). Addresses, ports and times are identity, never model features.
ATTACKERS = tuple(f"175.45.176.{host}" for host in range(4))
NORMAL_CLIENTS = tuple(f"59.166.0.{host}" for host in range(10))
NORMAL_SERVERS = tuple(f"149.171.126.{host}" for host in range(10))
VICTIMS = tuple(f"149.171.126.{host}" for host in range(10, 20))
SERVICE_PORTS = {
    "http": 80, "ftp": 21, "ftp-data": 20, "smtp": 25, "dns": 53, "ssh": 22, "ssl": 443, "pop3": 110,
    "snmp": 161, "radius": 1812, "irc": 6667, "dhcp": 67,
}  # fmt: skip
# When the testbed's capture began (2015-01-22); synthetic flows follow it a few milliseconds apart.
START_TIME = 1421927414.0
MEAN_GAP_S = 0.005


@functools.lru_cache(maxsize=1)
def load_stats() -> dict[str, Any]:
    stats: dict[str, Any] = json.loads(resources.files("nids_dataset").joinpath(STATS_FILE).read_text())
    return stats


def synthetic_frame(
    rows: int,
    seed: int = 7,
    stats: Mapping[str, Any] | None = None,
    class_shares: Mapping[str, float] | None = None,
    start_time: float = START_TIME,
) -> pd.DataFrame:
    """`rows` flows with the 42 features, label and attack_cat (classes in the data's proportions), and
    the identity a capture gives them: srcip, sport, dstip, dsport, stime and ltime from `start_time`."""
    stats = stats or load_stats()
    rng = np.random.default_rng(seed)
    classes = list(stats["classes"])
    shares = np.array([(class_shares or {}).get(c, stats["classes"][c]["share"]) for c in classes], dtype=float)
    counts = rng.multinomial(rows, shares / shares.sum())
    # Every class appears at least twice when there is room, so small synthetic sets stay stratifiable.
    if rows >= 2 * len(classes):
        for i in np.flatnonzero(counts < 2):
            deficit = 2 - counts[i]
            counts[i] = 2
            counts[counts.argmax()] -= deficit
    parts = [_draw_class(stats["classes"][c], c, n, rng) for c, n in zip(classes, counts) if n > 0]
    frame = pd.concat(parts, ignore_index=True)
    frame = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
    return with_identities(frame, rng, start_time)


def with_identities(frame: pd.DataFrame, rng: np.random.Generator, start_time: float) -> pd.DataFrame:
    """Addresses from the testbed's plan by class, the service's port (a random one for '-'), an
    ephemeral source port, and event times in row order."""
    rows = len(frame)
    attack = frame[LABEL].to_numpy() == 1

    def pick(hosts: tuple[str, ...]) -> np.ndarray:
        return np.asarray(hosts, dtype=object)[rng.integers(0, len(hosts), rows)]

    frame["srcip"] = np.where(attack, pick(ATTACKERS), pick(NORMAL_CLIENTS))
    frame["dstip"] = np.where(attack, pick(VICTIMS), pick(NORMAL_SERVERS))
    frame["sport"] = rng.integers(1024, 65536, rows)
    known = frame["service"].map(SERVICE_PORTS)
    frame["dsport"] = known.fillna(pd.Series(rng.integers(1, 65536, rows))).astype(np.int64)
    frame["stime"] = start_time + np.cumsum(rng.exponential(MEAN_GAP_S, rows))
    frame["ltime"] = frame["stime"] + frame["dur"]
    return frame


def _copula_factor(spec: Mapping[str, Any]) -> np.ndarray:
    """A factor L with L Lᵀ ≈ the stored correlation; eigenvalues clipped because 3-decimal rounding
    can leave the stored matrix slightly indefinite."""
    correlation = np.asarray(spec["normal_score_correlation"], dtype=float)
    values, vectors = np.linalg.eigh((correlation + correlation.T) / 2)
    factor: np.ndarray = vectors * np.sqrt(np.clip(values, 0.0, None))
    return factor


def _draw_class(spec: Mapping[str, Any], name: str, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    triples = spec["categorical_triples"]
    weights = np.array([t["share"] for t in triples], dtype=float)
    picks = rng.choice(len(triples), size=rows, p=weights / weights.sum())
    columns: dict[str, Any] = {}
    for position, feature in enumerate(CATEGORICAL_FEATURES):
        values = np.array([t["values"][position] for t in triples], dtype=object)
        columns[feature] = values[picks]
    z = rng.standard_normal((rows, len(NUMERIC_FEATURES))) @ _copula_factor(spec).T
    uniform = ndtr(z)
    grid = np.linspace(0.0, 1.0, len(next(iter(spec["quantiles"].values()))))
    for index, feature in enumerate(NUMERIC_FEATURES):
        quantiles = np.asarray(spec["quantiles"][feature], dtype=float)
        values = np.interp(uniform[:, index], grid, quantiles)
        if feature in spec["integer_features"]:
            values = np.round(values)
        columns[feature] = values
    frame = pd.DataFrame(columns)[list(FEATURES)]
    frame[ATTACK_CAT] = name
    frame[LABEL] = np.int8(name != NORMAL)
    return frame
