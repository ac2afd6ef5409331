"""Community ID v1 against the published vectors (the spec's baseline, as pycommunityid and Zeek test them)."""

from __future__ import annotations

import pytest

from nids_common.community_id import community_id, protocol_number

# (proto, source, destination, source port, destination port, id with seed 0, id with seed 1)
VECTORS = [
    (
        "tcp",
        "128.232.110.120",
        "66.35.250.204",
        34855,
        80,
        "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
        "1:3V71V58M3Ksw/yuFALMcW0LAHvc=",
    ),
    (
        "tcp",
        "66.35.250.204",
        "128.232.110.120",
        80,
        34855,
        "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
        "1:3V71V58M3Ksw/yuFALMcW0LAHvc=",
    ),
    ("tcp", "10.0.0.1", "10.0.0.2", 10, 11569, "1:SXBGMX1lBOwhhoDrZynfROxnhnM=", "1:HmBRGR+fUyXF4t8WEtal7Y0gEAo="),
    ("tcp", "1.2.3.4", "5.6.7.8", 1122, 3344, "1:wCb3OG7yAFWelaUydu0D+125CLM=", "1:HhA1B+6CoLbiKPEs5nhNYN4XWfk="),
    ("udp", "192.168.1.52", "8.8.8.8", 54585, 53, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
    ("udp", "8.8.8.8", "192.168.1.52", 53, 54585, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
    (
        "sctp",
        "192.168.170.8",
        "192.168.170.56",
        7,
        80,
        "1:jQgCxbku+pNGw8WPbEc/TS/uTpQ=",
        "1:Y1/0jQg6e+I3ZwZZ9LP65DNbTXU=",
    ),
    (
        "sctp",
        "192.168.170.56",
        "192.168.170.8",
        80,
        7,
        "1:jQgCxbku+pNGw8WPbEc/TS/uTpQ=",
        "1:Y1/0jQg6e+I3ZwZZ9LP65DNbTXU=",
    ),
    # ICMP: type and code as ports; a request and its reply share an id …
    ("icmp", "192.168.0.89", "192.168.0.1", 8, 0, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
    ("icmp", "192.168.0.1", "192.168.0.89", 0, 8, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
    ("icmp", "192.168.0.1", "192.168.0.89", 0, 20, "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=", "1:03g6IloqVBdcZlPyX8r0hgoE7kA="),
    # … a type without a counterpart is one-way: its code counts and nothing is reordered.
    ("icmp", "192.168.0.89", "192.168.0.1", 20, 0, "1:3o2RFccXzUgjl7zDpqmY7yJi8rI=", "1:lCXHHxavE1Vq3oX9NH5ladQg02o="),
    ("icmp", "192.168.0.89", "192.168.0.1", 20, 1, "1:tz/fHIDUHs19NkixVVoOZywde+I=", "1:Ie3wmFyxiEyikbsbcO03d2nh+PM="),
    (
        "ipv6-icmp",
        "fe80::200:86ff:fe05:80da",
        "fe80::260:97ff:fe07:69ea",
        135,
        0,
        "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
        "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY=",
    ),
    (
        "ipv6-icmp",
        "fe80::260:97ff:fe07:69ea",
        "fe80::200:86ff:fe05:80da",
        136,
        0,
        "1:dGHyGvjMfljg6Bppwm3bg0LO8TY=",
        "1:kHa1FhMYIT6Ym2Vm2AOtoOARDzY=",
    ),
    (
        "ipv6-icmp",
        "3ffe:507:0:1:260:97ff:fe07:69ea",
        "3ffe:507:0:1:200:86ff:fe05:80da",
        3,
        0,
        "1:NdobDX8PQNJbAyfkWxhtL2Pqp5w=",
        "1:OlOWx9psIbBFi7lOCw/4MhlKR9M=",
    ),
    (
        "ipv6-icmp",
        "3ffe:507:0:1:200:86ff:fe05:80da",
        "3ffe:507:0:1:260:97ff:fe07:69ea",
        3,
        0,
        "1:/OGBt9BN1ofenrmSPWYicpij2Vc=",
        "1:Ij4ZxnC87/MXzhOjvH2vHu7LRmE=",
    ),
    # A protocol without ports (RSVP): addresses only.
    (46, "10.1.24.4", "10.1.12.1", None, None, "1:/nQI4Rh/TtY3mf0R2gJFBkVlgS4=", "1:BK3BVW3U2eemuwVQVN3zd/GULno="),
    (46, "10.1.12.1", "10.1.24.4", None, None, "1:/nQI4Rh/TtY3mf0R2gJFBkVlgS4=", "1:BK3BVW3U2eemuwVQVN3zd/GULno="),
]


@pytest.mark.parametrize("proto,src,dst,sport,dport,seed0,seed1", VECTORS)
def test_published_vectors(proto: object, src: str, dst: str, sport: int, dport: int, seed0: str, seed1: str) -> None:
    assert community_id(src, sport, dst, dport, proto) == seed0
    assert community_id(src, sport, dst, dport, proto, seed=1) == seed1


def test_ports_and_protocols_as_unsw_nb15_writes_them() -> None:
    expected = "1:wCb3OG7yAFWelaUydu0D+125CLM="
    assert community_id("1.2.3.4", "1122", "5.6.7.8", "0x0d10", "TCP") == expected
    assert community_id(" 1.2.3.4", 1122.0, "5.6.7.8", 3344, "6") == expected
    assert [protocol_number(p) for p in ("tcp", "UDP", "17", 132, "unas", 300, True, None)] == [
        6,
        17,
        17,
        132,
        None,
        None,
        None,
        None,
    ]


@pytest.mark.parametrize(
    "src,sport,dst,dport,proto",
    [
        (None, 1, "5.6.7.8", 2, "tcp"),
        ("1.2.3.4", 1, "host.example", 2, "tcp"),
        ("1.2.3.4", 1, "::1", 2, "tcp"),  # families differ
        ("1.2.3.4", None, "5.6.7.8", None, "tcp"),  # tcp needs ports
        ("1.2.3.4", 1, "5.6.7.8", None, "tcp"),
        ("1.2.3.4", -1, "5.6.7.8", 2, "tcp"),
        ("1.2.3.4", 70000, "5.6.7.8", 2, "tcp"),
        ("1.2.3.4", "-", "5.6.7.8", 2, "tcp"),
        ("1.2.3.4", 1, "5.6.7.8", 2, "unas"),
        ("1.2.3.4", 1, "5.6.7.8", 2, None),
    ],
)
def test_what_cannot_make_an_id_gives_none(
    src: object, sport: object, dst: object, dport: object, proto: object
) -> None:
    assert community_id(src, sport, dst, dport, proto) is None
