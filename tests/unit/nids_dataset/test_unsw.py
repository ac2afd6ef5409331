"""The UNSW-NB15 loader: both formats told apart by content, the cleaning rules, one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nids_common.errors import InputError
from nids_common.schema import FEATURES
from nids_dataset.unsw import FileFormat, derive_rate, detect_format, iter_flows, load_flows
from tests.fixtures import flows_with_identity, write_partitioned, write_raw


@pytest.fixture
def flows() -> pd.DataFrame:
    return flows_with_identity(300)


def test_partitioned_file_detected_by_content_not_name(tmp_path: Path, flows: pd.DataFrame) -> None:
    # Copies of the partitioned files circulate under swapped or raw-looking names.
    path = write_partitioned(flows, tmp_path / "UNSW-NB15_1.csv")
    assert detect_format(path) is FileFormat.PARTITIONED
    loaded = load_flows([path])
    assert len(loaded) == len(flows)
    assert list(loaded["attack_cat"]) == list(flows["attack_cat"])
    np.testing.assert_allclose(loaded["sbytes"], flows["sbytes"])


def test_raw_file_columns_renamed_and_rate_derived(tmp_path: Path, flows: pd.DataFrame) -> None:
    path = write_raw(flows, tmp_path / "UNSW_NB15_training-set.csv")
    assert detect_format(path) is FileFormat.RAW
    loaded = load_flows([path])
    assert set(FEATURES) <= set(loaded.columns)
    np.testing.assert_allclose(loaded["spkts"], flows["spkts"])
    np.testing.assert_allclose(loaded["smean"], flows["smean"])
    np.testing.assert_allclose(loaded["response_body_len"], flows["response_body_len"])
    expected_rate = derive_rate(
        flows["spkts"].to_numpy(float), flows["dpkts"].to_numpy(float), flows["dur"].to_numpy(float)
    )
    np.testing.assert_allclose(loaded["rate"], expected_rate)
    # Blank attack_cat in raw rows means normal traffic.
    assert list(loaded["attack_cat"]) == list(flows["attack_cat"])
    assert list(loaded["srcip"][:2]) == list(flows["srcip"][:2])
    assert "stime" in loaded.columns and "ltime" in loaded.columns


def test_rate_matches_partitioned_definition() -> None:
    # Two rows of the partitioned testing set: (2 + 0 - 1) / 0.000011 and (2 + 0 - 1) / 0.000008.
    rate = derive_rate(np.array([2.0, 2.0, 5.0]), np.array([0.0, 0.0, 3.0]), np.array([0.000011, 0.000008, 0.0]))
    np.testing.assert_allclose(rate, [90909.0909, 125000.0, 0.0], rtol=1e-6)


def test_raw_quirks_cleaned(tmp_path: Path, flows: pd.DataFrame) -> None:
    path = write_raw(flows.head(6), tmp_path / "raw.csv")
    lines = path.read_bytes().decode("utf-8-sig").splitlines()
    rows = [line.split(",") for line in lines]
    rows[0][1], rows[0][3] = "0x000b", "-"  # hexadecimal and '-' ports
    rows[1][37], rows[1][38] = "", ""  # empty ct_flw_http_mthd, is_ftp_login
    rows[2][47] = " Backdoors "  # the plural spelling, with spaces
    rows[3][47] = " Fuzzers"
    rows[4][7] = "inf"  # a non-finite number
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(",".join(r) for r in rows).encode() + b"\n")
    loaded = load_flows([path])
    assert loaded.loc[0, "sport"] == 11
    assert pd.isna(loaded.loc[0, "dsport"])
    assert loaded.loc[1, "ct_flw_http_mthd"] == 0 and loaded.loc[1, "is_ftp_login"] == 0
    assert loaded.loc[2, "attack_cat"] == "Backdoor"
    assert loaded.loc[3, "attack_cat"] == "Fuzzers"
    assert pd.isna(loaded.loc[4, "sbytes"])


def test_chunked_reading_equals_whole(tmp_path: Path, flows: pd.DataFrame) -> None:
    path = write_partitioned(flows, tmp_path / "flows.csv")
    chunks = list(iter_flows(path, chunk_rows=37))
    assert len(chunks) == -(-len(flows) // 37)
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), load_flows([path]))


def test_categoricals_normalised(tmp_path: Path, flows: pd.DataFrame) -> None:
    frame = flows.head(3).copy()
    frame["proto"] = [" TCP", "udp ", None]
    loaded = load_flows([write_partitioned(frame, tmp_path / "f.csv")])
    assert list(loaded["proto"]) == ["tcp", "udp", "-"]


@pytest.mark.parametrize(
    "content,expected",
    [
        ("", "empty file"),
        ("a,b,c\n1,2,3\n", "unknown format"),
        ("id,dur,proto,service,state,spkts\n1,0.1,tcp,-,FIN,2\n", "column dpkts: missing from the header"),
    ],
)
def test_bad_files_one_line_errors(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(InputError) as info:
        load_flows([path])
    assert str(info.value).startswith(f"{path}: ")
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_wrong_type_names_column_and_row(tmp_path: Path, flows: pd.DataFrame) -> None:
    frame = flows.head(5).copy()
    frame["sbytes"] = frame["sbytes"].astype(object)
    frame.loc[3, "sbytes"] = "lots"
    path = write_partitioned(frame, tmp_path / "typed.csv")
    with pytest.raises(InputError, match=r"typed\.csv: column sbytes: not a number: 'lots' \(data row 4\)"):
        load_flows([path])


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        load_flows([tmp_path / "absent.csv"])
