"""Operator suppression: which rule, if any, silences an alert; counts per rule for the metrics.

A rule matches when every criterion it gives matches (source CIDR, destination CIDR, class) and
the alert's detection time is before the rule's `expires`. The first matching rule in config order
takes the alert. Detection time, not event time, decides expiry: it is wall-clock time (a replay of
old traffic is not suppressed for ever) and is in the alert, so a stream and an offline run agree.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Sequence

from incidents.config import SuppressRule
from incidents.keys import address_text
from nids_common.contract import AlertSummary

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# Distinct addresses whose matching rules are remembered, per side.
CACHE_SIZE = 65_536


class Suppressor:
    """Shared by every partition of a process, so `counts` is the process's total per rule."""

    def __init__(self, rules: Sequence[SuppressRule]) -> None:
        self.rules = tuple(rules)
        self.counts: dict[str, int] = {rule.name: 0 for rule in self.rules}
        self._names = [rule.name for rule in self.rules]
        self._expires_at = [rule.expires_at for rule in self.rules]
        # Each criterion as a bit mask of the rules it lets through: an alert's candidates are the AND
        # of three look-ups, so an address is parsed and tested against the CIDRs once.
        self._any_class = sum(1 << i for i, rule in enumerate(self.rules) if not rule.attack_cat)
        self._class_masks = {
            rule.attack_cat: self._any_class
            | sum(1 << i for i, other in enumerate(self.rules) if other.attack_cat == rule.attack_cat)
            for rule in self.rules
            if rule.attack_cat
        }
        sources = [_network(rule.src_cidr) for rule in self.rules]
        destinations = [_network(rule.dst_cidr) for rule in self.rules]
        self._source_mask = functools.lru_cache(maxsize=CACHE_SIZE)(functools.partial(_mask, sources))
        self._destination_mask = functools.lru_cache(maxsize=CACHE_SIZE)(functools.partial(_mask, destinations))

    @property
    def active(self) -> bool:
        return bool(self.rules)

    def rule_for(self, alert: AlertSummary) -> str | None:
        """The name of the rule suppressing `alert` (counted), or None."""
        candidates = self._class_masks.get(alert.attack_cat, self._any_class)
        if candidates:
            candidates &= self._source_mask(address_text(alert.srcip))
        if candidates:
            candidates &= self._destination_mask(address_text(alert.dstip))
        index = 0
        while candidates:
            if candidates & 1 and alert.detected_at < self._expires_at[index]:
                name = self._names[index]
                self.counts[name] += 1
                return name
            candidates >>= 1
            index += 1
        return None


def _mask(networks: Sequence[Network | None], text: str | None) -> int:
    """The rules whose criterion on this side lets the address through."""
    address = _address(text)
    return sum(1 << i for i, network in enumerate(networks) if _within(address, network))


def _network(cidr: str) -> Network | None:
    return ipaddress.ip_network(cidr) if cidr else None


def _address(text: str | None) -> Address | None:
    if text is None:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _within(address: Address | None, network: Network | None) -> bool:
    """No criterion matches anything; a criterion never matches an alert without that address."""
    if network is None:
        return True
    return address is not None and address.version == network.version and address in network
