"""Community ID v1 (github.com/corelight/community-id-spec): one flow's id, the same in both directions.

The string Zeek, Suricata and most SIEMs print for a flow, so an alert or incident can be joined with
their logs. sha1 over the seed, the two addresses and ports in a canonical order, and the protocol,
in base64 with a `1:` prefix. Written here rather than taken from the `communityid` package: the
whole algorithm is these few lines, and the detector needs it per alert without a FlowTuple object.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import socket
import struct
from typing import Final

__all__ = ["PROTOCOL_NUMBERS", "community_id", "protocol_number"]

ICMP: Final = 1
ICMP6: Final = 58
# Protocols whose flows are five-tuples: their ports (ICMP's type and code) are hashed and required.
_PORT_PROTOCOLS: Final = frozenset({ICMP, 6, 17, ICMP6, 132})

# IANA names as UNSW-NB15's `proto` spells them. A fixed table, not /etc/protocols: the id must not
# depend on the host.
PROTOCOL_NUMBERS: Final = {
    "icmp": ICMP,
    "igmp": 2,
    "ggp": 3,
    "ipnip": 4,
    "st2": 5,
    "tcp": 6,
    "egp": 8,
    "igp": 9,
    "udp": 17,
    "ipv6": 41,
    "rsvp": 46,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "ipv6-icmp": ICMP6,
    "icmp6": ICMP6,
    "eigrp": 88,
    "ospf": 89,
    "pim": 103,
    "vrrp": 112,
    "l2tp": 115,
    "sctp": 132,
}

# ICMP types that have a counterpart (request ↔ reply): the pair shares one id. Any other type is
# one-way, hashed as sent (the spec follows Zeek here).
_ICMP_COUNTERPARTS: Final = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
_ICMP6_COUNTERPARTS: Final = {
    128: 129,
    129: 128,
    130: 131,
    131: 130,
    133: 134,
    134: 133,
    135: 136,
    136: 135,
    139: 140,
    140: 139,
    144: 145,
    145: 144,
}
_PORT = struct.Struct("!H")


def protocol_number(proto: object) -> int | None:
    """6 for `6`, `"6"`, `"tcp"` or `"TCP"`; None for a name outside PROTOCOL_NUMBERS."""
    if isinstance(proto, bool):
        return None
    if isinstance(proto, int):
        return proto if 0 <= proto <= 255 else None
    return _protocol_name(proto) if isinstance(proto, str) else None


@functools.lru_cache(maxsize=1024)
def _protocol_name(name: str) -> int | None:
    text = name.strip().lower()
    if text.isdigit():
        return protocol_number(int(text))
    return PROTOCOL_NUMBERS.get(text)


def community_id(
    srcip: object, sport: object, dstip: object, dsport: object, proto: object, seed: int = 0
) -> str | None:
    """The flow's Community ID v1, or None when an address, a port its protocol needs, or the protocol
    is missing or not understood (identity fields are any JSON: nothing here raises)."""
    number = protocol_number(proto)
    if number is None:
        return None
    source, destination = _packed(srcip), _packed(dstip)
    if source is None or destination is None or len(source) != len(destination):
        return None
    source_port, destination_port = _port(sport), _port(dsport)
    if (source_port is None) != (destination_port is None):
        return None
    if source_port is None or destination_port is None:
        if number in _PORT_PROTOCOLS:
            return None
        ports = b""
        if destination < source:
            source, destination = destination, source
    else:
        one_way = False
        if number in (ICMP, ICMP6):
            counterparts = _ICMP_COUNTERPARTS if number == ICMP else _ICMP6_COUNTERPARTS
            counterpart = counterparts.get(source_port)
            if counterpart is None:
                one_way = True
            else:
                destination_port = counterpart
        if not one_way and (destination, destination_port) < (source, source_port):
            source, destination = destination, source
            source_port, destination_port = destination_port, source_port
        ports = _PORT.pack(source_port) + _PORT.pack(destination_port)
    digest = hashlib.sha1(
        _PORT.pack(seed) + source + destination + bytes((number, 0)) + ports, usedforsecurity=False
    ).digest()
    return "1:" + binascii.b2a_base64(digest, newline=False).decode("ascii")


@functools.lru_cache(maxsize=65_536)
def _packed_text(address: str) -> bytes | None:
    # A stream sees the same few thousand addresses again and again: parse each once.
    text = address.strip()
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_pton(family, text)
        except OSError:
            continue
    return None


def _packed(address: object) -> bytes | None:
    return _packed_text(address) if isinstance(address, str) else None


def _port(value: object) -> int | None:
    """A port as UNSW-NB15 writes it: a number, a decimal string or a hex string ("0x000b")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        port = value
    elif isinstance(value, float) and value.is_integer():
        port = int(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        try:
            port = int(text, 16) if text.startswith("0x") else int(text)
        except ValueError:
            return None
    else:
        return None
    return port if 0 <= port <= 65535 else None
