"""The UNSW-NB15 flow schema: one home for column names shared by training, the producer and the detector."""

from __future__ import annotations

CATEGORICAL_FEATURES: tuple[str, ...] = ("proto", "service", "state")

# The 42 features of the partitioned files, in their order. Identity, time and label columns are not here.
FEATURES: tuple[str, ...] = (
    "dur",
    "proto",
    "service",
    "state",
    "spkts",
    "dpkts",
    "sbytes",
    "dbytes",
    "rate",
    "sttl",
    "dttl",
    "sload",
    "dload",
    "sloss",
    "dloss",
    "sinpkt",
    "dinpkt",
    "sjit",
    "djit",
    "swin",
    "stcpb",
    "dtcpb",
    "dwin",
    "tcprtt",
    "synack",
    "ackdat",
    "smean",
    "dmean",
    "trans_depth",
    "response_body_len",
    "ct_srv_src",
    "ct_state_ttl",
    "ct_dst_ltm",
    "ct_src_dport_ltm",
    "ct_dst_sport_ltm",
    "ct_dst_src_ltm",
    "is_ftp_login",
    "ct_ftp_cmd",
    "ct_flw_http_mthd",
    "ct_src_ltm",
    "ct_srv_dst",
    "is_sm_ips_ports",
)
NUMERIC_FEATURES: tuple[str, ...] = tuple(f for f in FEATURES if f not in CATEGORICAL_FEATURES)

LABEL = "label"
ATTACK_CAT = "attack_cat"
NORMAL = "Normal"
IDENTITY_FIELDS: tuple[str, ...] = ("srcip", "sport", "dstip", "dsport")
TIME_FIELDS: tuple[str, ...] = ("stime", "ltime")
# Never model inputs: `id` follows the file order, which is grouped by class, so it leaks the label;
# addresses, ports and timestamps identify the testbed, not the behaviour.
NEVER_FEATURES: frozenset[str] = frozenset({"id", LABEL, ATTACK_CAT, *IDENTITY_FIELDS, *TIME_FIELDS})

ATTACK_CLASSES: tuple[str, ...] = (
    "Normal",
    "Generic",
    "Exploits",
    "Fuzzers",
    "DoS",
    "Reconnaissance",
    "Analysis",
    "Backdoor",
    "Shellcode",
    "Worms",
)

# The raw capture files (UNSW-NB15_1..4.csv): no header, these 49 columns (NUSW-NB15_features.csv).
RAW_COLUMNS: tuple[str, ...] = (
    "srcip",
    "sport",
    "dstip",
    "dsport",
    "proto",
    "state",
    "dur",
    "sbytes",
    "dbytes",
    "sttl",
    "dttl",
    "sloss",
    "dloss",
    "service",
    "Sload",
    "Dload",
    "Spkts",
    "Dpkts",
    "swin",
    "dwin",
    "stcpb",
    "dtcpb",
    "smeansz",
    "dmeansz",
    "trans_depth",
    "res_bdy_len",
    "Sjit",
    "Djit",
    "Stime",
    "Ltime",
    "Sintpkt",
    "Dintpkt",
    "tcprtt",
    "synack",
    "ackdat",
    "is_sm_ips_ports",
    "ct_state_ttl",
    "ct_flw_http_mthd",
    "is_ftp_login",
    "ct_ftp_cmd",
    "ct_srv_src",
    "ct_srv_dst",
    "ct_dst_ltm",
    "ct_src_ltm",
    "ct_src_dport_ltm",
    "ct_dst_sport_ltm",
    "ct_dst_src_ltm",
    "attack_cat",
    "Label",
)
RAW_TO_PARTITIONED: dict[str, str] = {
    "Sload": "sload",
    "Dload": "dload",
    "Spkts": "spkts",
    "Dpkts": "dpkts",
    "smeansz": "smean",
    "dmeansz": "dmean",
    "res_bdy_len": "response_body_len",
    "Sjit": "sjit",
    "Djit": "djit",
    "Stime": "stime",
    "Ltime": "ltime",
    "Sintpkt": "sinpkt",
    "Dintpkt": "dinpkt",
    "Label": "label",
}
