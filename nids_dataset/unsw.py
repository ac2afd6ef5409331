"""Loading and cleaning UNSW-NB15 files of either public format, streamed in chunks.

The format is read from the content, never the file name (copies of the partitioned files circulate
with their names swapped): a header row naming the partitioned features, or 49 header-less columns
in the raw capture layout of NUSW-NB15_features.csv.
"""

from __future__ import annotations

import csv
import enum
import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from nids_common.errors import InputError
from nids_common.schema import (
    ATTACK_CAT,
    CATEGORICAL_FEATURES,
    FEATURES,
    LABEL,
    NORMAL,
    NUMERIC_FEATURES,
    RAW_COLUMNS,
    RAW_TO_PARTITIONED,
)

DEFAULT_CHUNK_ROWS = 200_000
# Blank in many rows of the raw files where the counter simply did not apply.
EMPTY_MEANS_ZERO = ("ct_flw_http_mthd", "is_ftp_login")
_CATEGORY_FIXES = {"Backdoors": "Backdoor"}


class FileFormat(enum.Enum):
    PARTITIONED = "partitioned"
    RAW = "raw"


def detect_format(path: str | os.PathLike[str]) -> FileFormat:
    """Tell the two public layouts apart by their first line."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            first = handle.readline()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text CSV file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    if not first.strip():
        raise InputError(f"{path}: empty file")
    cells = [c.strip() for c in next(csv.reader(io.StringIO(first)))]
    lowered = {c.lower() for c in cells}
    if {"proto", "service", "state"} <= lowered and "dur" in lowered:
        missing = [f for f in FEATURES if f not in lowered]
        if missing:
            raise InputError(
                f"{path}: column {missing[0]}: missing from the header ({len(missing)} feature columns missing)"
            )
        return FileFormat.PARTITIONED
    if len(cells) == len(RAW_COLUMNS):
        return FileFormat.RAW
    raise InputError(
        f"{path}: unknown format: the first line is neither a UNSW-NB15 header nor a "
        f"{len(RAW_COLUMNS)}-column raw record "
        f"({len(cells)} columns)"
    )


def iter_flows(path: str | os.PathLike[str], chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """Yield cleaned chunks with the partitioned column names (plus identity/time/label columns present)."""
    path = Path(path)
    file_format = detect_format(path)
    if file_format is FileFormat.PARTITIONED:
        reader = pd.read_csv(
            path,
            encoding="utf-8-sig",
            chunksize=chunk_rows,
            skipinitialspace=True,
            dtype={ATTACK_CAT: "string"},
            keep_default_na=False,
            na_values=[""],
            low_memory=False,
        )
    else:
        reader = pd.read_csv(
            path,
            encoding="utf-8-sig",
            chunksize=chunk_rows,
            header=None,
            names=list(RAW_COLUMNS),
            dtype={"sport": "string", "dsport": "string", ATTACK_CAT: "string"},
            keep_default_na=False,
            na_values=[""],
            low_memory=False,
        )
    rows_before = 0
    try:
        for chunk in reader:
            if file_format is FileFormat.RAW:
                chunk = from_raw(chunk)
            else:
                chunk.columns = [c.strip().lower() for c in chunk.columns]
            yield clean(chunk, source=str(path), first_row=rows_before)
            rows_before += len(chunk)
    except pd.errors.ParserError as exc:
        raise InputError(f"{path}: malformed CSV: {str(exc).strip().splitlines()[-1]}") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: empty file") from None
    if rows_before == 0:
        raise InputError(f"{path}: no data rows")


def load_flows(paths: Iterable[str | os.PathLike[str]], chunk_rows: int = DEFAULT_CHUNK_ROWS) -> pd.DataFrame:
    frames = [chunk for path in paths for chunk in iter_flows(path, chunk_rows)]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def from_raw(frame: pd.DataFrame) -> pd.DataFrame:
    """Rename raw columns to the partitioned names and derive `rate`, which raw rows lack."""
    frame = frame.rename(columns=RAW_TO_PARTITIONED)
    frame["spkts"] = pd.to_numeric(frame["spkts"], errors="coerce")
    frame["dpkts"] = pd.to_numeric(frame["dpkts"], errors="coerce")
    frame["dur"] = pd.to_numeric(frame["dur"], errors="coerce")
    frame["rate"] = derive_rate(
        frame["spkts"].to_numpy(float), frame["dpkts"].to_numpy(float), frame["dur"].to_numpy(float)
    )
    return frame


def derive_rate(spkts: np.ndarray, dpkts: np.ndarray, dur: np.ndarray) -> np.ndarray:
    """Packets per second as the partitioned files define it: (spkts + dpkts - 1) / dur, 0 for dur 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = (spkts + dpkts - 1.0) / dur
    return np.where(dur > 0, rate, 0.0)


def parse_port(values: pd.Series) -> pd.Series:
    """Ports are decimal, hexadecimal (`0x…`) or `-` in the raw files; `-` and blanks become missing."""
    text = values.astype("string").str.strip()
    out = pd.to_numeric(text, errors="coerce")
    hexa = text.str.lower().str.startswith("0x", na=False)
    if hexa.any():
        out = out.astype("float64")
        out[hexa] = [int(v, 16) for v in text[hexa]]
    return out.astype("Int64")


def clean(frame: pd.DataFrame, source: str = "<frame>", first_row: int = 0) -> pd.DataFrame:
    """Apply the cleaning rules; raise InputError naming the column and the row for a value of the wrong type."""
    frame = frame.copy()
    missing = [f for f in FEATURES if f not in frame.columns]
    if missing:
        raise InputError(f"{source}: column {missing[0]}: missing ({len(missing)} feature columns missing)")
    for column in CATEGORICAL_FEATURES:
        frame[column] = frame[column].astype("string").str.strip().str.lower().fillna("-")
    for column in NUMERIC_FEATURES:
        frame[column] = _numeric(frame[column], column, source, first_row)
    for column in EMPTY_MEANS_ZERO:
        frame[column] = frame[column].fillna(0.0)
    for column in ("sport", "dsport"):
        if column in frame.columns:
            frame[column] = parse_port(frame[column])
    for column in ("srcip", "dstip"):
        if column in frame.columns:
            frame[column] = frame[column].astype("string").str.strip()
    if ATTACK_CAT in frame.columns:
        cats = frame[ATTACK_CAT].astype("string").str.strip().replace(_CATEGORY_FIXES)
        frame[ATTACK_CAT] = cats.mask(cats.isna() | (cats == ""), NORMAL)
    if LABEL in frame.columns:
        frame[LABEL] = _numeric(frame[LABEL], LABEL, source, first_row).fillna(0).astype("int8")
    elif ATTACK_CAT in frame.columns:
        frame[LABEL] = (frame[ATTACK_CAT] != NORMAL).astype("int8")
    return frame


def _numeric(values: pd.Series, column: str, source: str, first_row: int) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        out = values.astype("float64")
    else:
        out = pd.to_numeric(values, errors="coerce").astype("float64")
        bad = out.isna() & values.notna() & (values.astype("string").str.strip() != "")
        if bad.any():
            position = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                f"{source}: column {column}: not a number: {values.iloc[position]!r} "
                f"(data row {first_row + position + 1})"
            )
    # Non-finite values carry no usable magnitude; the model's preprocessing imputes missing values.
    return out.mask(~np.isfinite(out.to_numpy()))
