"""Incident keys: which alerts belong together, as a string per alert (hot path) and as a struct per incident.

Key strings: `src=<address>`, `dst=<address>`, `pair=<lower>,<higher>`, each optionally followed by
`|attack_cat=<class>`; alerts without the addresses the choice needs get `attack_cat=<class>`.
"""

from __future__ import annotations

from collections.abc import Callable

from nids_common.contract import FALLBACK_KEY, AlertSummary, IncidentKey, KeyChoice

KeyFunction = Callable[[AlertSummary], str]
# Identity fields are any JSON; these mean "no value" in UNSW-NB15 and the alerts built from it.
_MISSING = frozenset({"", "-"})


def address_text(value: object) -> str | None:
    """An identity field (address or port) as text, or None when the alert has no usable value."""
    if isinstance(value, str):
        text = value.strip()
        return None if text in _MISSING else text
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def key_function(choice: KeyChoice) -> KeyFunction:
    """The key string of an alert under `choice`."""
    by, _, with_class = choice.partition("+")
    addresses = {"src": _source, "dst": _destination, "pair": _pair}[by]

    def key(alert: AlertSummary) -> str:
        part = addresses(alert)
        if part is None:
            return f"{FALLBACK_KEY}={alert.attack_cat}"
        return f"{part}|attack_cat={alert.attack_cat}" if with_class else part

    return key


def _source(alert: AlertSummary) -> str | None:
    source = address_text(alert.srcip)
    return None if source is None else f"src={source}"


def _destination(alert: AlertSummary) -> str | None:
    destination = address_text(alert.dstip)
    return None if destination is None else f"dst={destination}"


def _pair(alert: AlertSummary) -> str | None:
    source, destination = address_text(alert.srcip), address_text(alert.dstip)
    if source is None or destination is None:
        return None
    low, high = (source, destination) if source <= destination else (destination, source)
    return f"pair={low},{high}"


def describe_key(choice: KeyChoice, alert: AlertSummary, text: str) -> IncidentKey:
    """The struct of `text`, the key of `alert` under `choice` (made from the alert, not parsed back:
    addresses are any JSON and may hold the separators)."""
    by = choice.partition("+")[0]
    source, destination = address_text(alert.srcip), address_text(alert.dstip)
    needed = (source,) if by == "src" else (destination,) if by == "dst" else (source, destination)
    if None in needed:
        return IncidentKey(text=text, by=FALLBACK_KEY, addresses=(), attack_cat=alert.attack_cat, source_unknown=True)
    addresses = tuple(sorted(address for address in needed if address is not None))
    attack_cat = alert.attack_cat if choice.endswith("+attack_cat") else None
    return IncidentKey(text=text, by=choice, addresses=addresses, attack_cat=attack_cat, source_unknown=False)
