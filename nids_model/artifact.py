"""The model artifact: models/<version>/{model.joblib, manifest.json, report.md, figures}, models/latest.

joblib is pickle, and unpickling runs code: nothing is unpickled before the file's sha256 matches the
manifest, its HMAC-SHA256 matches when NIDS_MODEL_KEY is set, and the library versions match the ones
it was built with. The model file is read once: the bytes verified are the bytes unpickled, so a file
swapped after the check is never loaded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import itertools
import json
import os
import platform
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

import joblib
import msgspec
import numpy as np
import pandas as pd
import sklearn

from nids_common.errors import ArtifactError
from nids_common.schema import ATTACK_CLASSES, FEATURES, NORMAL
from nids_model.canary import check_canary
from nids_model.detection import DetectionModel
from nids_model.manifest import Libraries, Manifest, TrainingRecord, decode, encode

# 2: the runtime classes live in nids_model (0.2.0); a format-1 pickle names training.* modules that
# no longer exist. 3: a canary batch with its expected outputs (nids_model.canary). 4: attack_cat
# models fitted on attack rows (AttackOnlyClassifier), class scales tuned on grouped folds (a new
# ClassScaledClassifier parameter), an operating point. 5: a typed manifest (nids_model.manifest), whose
# unknown or missing fields are refused. 6: the seen regime (nids_model.seen_regime) in the model, its
# digest and the cross-validated figures in the manifest. 7: attack_cat models may average a forest
# and boosting (nids_model.averaging), a class a format-6 reader lacks; a format-6 artifact holds
# only classes this version still has, so it is still read. 8: the seen class scales by the vector's
# training rows (SeenRegime.min_rows, the manifest's `more_rows`); a format 6 or 7 seen regime is one
# such bucket and digests as it did, so both are still read. 9: the seen table holds each vector's
# held-out class probabilities (SeenVectors.held_out), which the seen rule scales instead of the
# deployed model's; a table of formats 6 to 8 has none and keeps its rule, so all are still read. Any
# other format is refused before unpickling, with a message that says what to do.
ARTIFACT_FORMAT = 9
READABLE_FORMATS = (6, 7, 8, 9)
MODEL_FILE = "model.joblib"
HISTORY_FILE = "history.jsonl"
MANIFEST_FILE = "manifest.json"
LATEST = "latest"
KEY_ENV = "NIDS_MODEL_KEY"


def library_versions() -> Libraries:
    return Libraries(
        python=platform.python_version(),
        sklearn=sklearn.__version__,
        numpy=np.__version__,
        pandas=pd.__version__,
        joblib=joblib.__version__,
    )


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _signature(payload: bytes, key: str) -> str:
    return hmac.new(key.encode(), payload, digestmod=hashlib.sha256).hexdigest()


def new_version(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def write_artifact(
    out_dir: str | os.PathLike[str],
    model: DetectionModel,
    record: TrainingRecord,
    write_extras: Callable[[Path], None] | None = None,
    version: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Write everything into a temporary folder, then rename it into place and repoint `latest`.

    A crash at any point leaves either the previous state or the complete new version, never half.
    """
    env = os.environ if env is None else env
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    version = version or new_version()
    staging = out_dir / f".staging-{version}"
    final = out_dir / version
    if final.exists():
        raise ArtifactError(f"{final}: a model of this version already exists")
    try:
        staging.mkdir()
        model_path = staging / MODEL_FILE
        joblib.dump(model, model_path, compress=3)
        payload = model_path.read_bytes()
        key = env.get(KEY_ENV)
        manifest = Manifest(
            **msgspec.structs.asdict(record),
            artifact_format=ARTIFACT_FORMAT,
            version=version,
            created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            libraries=library_versions(),
            model_file=MODEL_FILE,
            model_sha256=hashlib.sha256(payload).hexdigest(),
            model_hmac_sha256=_signature(payload, key) if key else None,
        )
        (staging / MANIFEST_FILE).write_text(encode(manifest))
        if write_extras is not None:
            write_extras(staging)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    point_latest(out_dir, version)
    return final


def point_latest(models: str | os.PathLike[str], version: str, action: str = "promote") -> None:
    """Re-point `models/latest` at `version` atomically (a new link renamed over the old one: a reader
    sees the old target or the new one, never none), and note it in `models/history.jsonl`."""
    models = Path(models)
    link_tmp = models / f".{LATEST}-{version}-{uuid.uuid4().hex[:6]}"
    link_tmp.symlink_to(version)
    os.replace(link_tmp, models / LATEST)
    entry = {"version": version, "action": action, "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    with open(models / HISTORY_FILE, "a") as history:
        history.write(json.dumps(entry) + "\n")


def versions(models: str | os.PathLike[str]) -> list[str]:
    """The version folders of `models`, oldest first (version names start with their UTC time)."""
    return sorted(
        p.name for p in Path(models).iterdir() if p.is_dir() and not p.is_symlink() and (p / MANIFEST_FILE).is_file()
    )


def promotion_stack(models: str | os.PathLike[str]) -> list[str]:
    """The versions `latest` was promoted to, in order, less those rolled back (models/history.jsonl):
    the last is the current one, the one before it what a rollback returns to."""
    path = Path(models) / HISTORY_FILE
    stack: list[str] = []
    if path.is_file():
        for line in path.read_text().splitlines():
            entry = json.loads(line) if line.strip() else None
            if entry is None:
                continue
            if entry.get("action") == "rollback":
                # Back down to the version rolled back to: what was promoted after it is undone.
                while stack and stack[-1] != entry["version"]:
                    stack.pop()
                if not stack:
                    stack.append(entry["version"])
            else:
                stack.append(entry["version"])
    return stack


def resolve(path: str | os.PathLike[str]) -> Path:
    """A version folder, a `latest` link, or a models/ folder holding `latest`."""
    path = Path(path)
    if (path / MANIFEST_FILE).is_file():
        return path.resolve()
    if (path / LATEST / MANIFEST_FILE).is_file():
        return (path / LATEST).resolve()
    raise ArtifactError(f"{path}: no model here (expected {MANIFEST_FILE}; train one with nids-train)")


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """The manifest of a model folder; ArtifactError for another artifact format (before its fields are
    read: an older manifest is not expected to fit) or a field that does not fit."""
    folder = resolve(path)
    source = folder / MANIFEST_FILE
    try:
        document = json.loads(source.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{source}: not valid JSON: {exc.msg}") from None
    # Before 0.2.0 manifests carried no format number: that is format 1.
    built_format = document.get("artifact_format", 1) if isinstance(document, dict) else None
    if built_format not in READABLE_FORMATS:
        *earlier, last = (str(f) for f in READABLE_FORMATS)
        readable = f"{', '.join(earlier)} and {last}" if earlier else last
        newer = isinstance(built_format, int) and built_format > ARTIFACT_FORMAT
        raise ArtifactError(
            f"{folder}: artifact format {built_format}, this nids-stream reads formats {readable}: "
            + ("upgrade nids-stream, or " if newer else "")
            + "retrain the model with nids-train"
        )
    return decode(document, source)


def verify(
    path: str | os.PathLike[str], env: Mapping[str, str] | None = None, require_signature: bool = False
) -> tuple[bytes, Manifest]:
    """Check checksum, signature and library versions; return the model file's bytes, the ones checked,
    and the manifest. Unpickles nothing. With `require_signature` a model is loaded only when
    NIDS_MODEL_KEY is set and verifies: the checksum alone guards against a damaged file, not against
    someone who can write both files."""
    env = os.environ if env is None else env
    if require_signature and not env.get(KEY_ENV):
        raise ArtifactError(f"signed models are required but {KEY_ENV} is not set: refusing to load any model")
    folder = resolve(path)
    manifest = read_manifest(folder)
    model_path = folder / manifest.model_file
    try:
        payload = model_path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"{model_path}: cannot read the model file: {exc.strerror}") from None
    actual = hashlib.sha256(payload).hexdigest()
    if not hmac.compare_digest(actual, manifest.model_sha256):
        raise ArtifactError(
            f"{model_path}: sha256 {actual[:12]}… does not match the manifest ({manifest.model_sha256[:12]}…): "
            "refusing to load"
        )
    key = env.get(KEY_ENV)
    if key:
        if not manifest.model_hmac_sha256:
            raise ArtifactError(f"{folder}: {KEY_ENV} is set but the model is unsigned: refusing to load")
        if not hmac.compare_digest(_signature(payload, key), manifest.model_hmac_sha256):
            raise ArtifactError(f"{model_path}: HMAC signature does not verify with {KEY_ENV}: refusing to load")
    built, here = manifest.libraries, library_versions()
    # A pickled estimator is only guaranteed to behave the same under the scikit-learn it was built
    # with, and numpy's pickle layout changes across major versions.
    if built.sklearn != here.sklearn:
        raise ArtifactError(
            f"{folder}: built with scikit-learn {built.sklearn}, this is {here.sklearn}: retrain the model"
        )
    if built.numpy.split(".")[0] != here.numpy.split(".")[0]:
        raise ArtifactError(f"{folder}: built with numpy {built.numpy}, this is {here.numpy}: retrain the model")
    return payload, manifest


def load_model(
    path: str | os.PathLike[str], env: Mapping[str, str] | None = None, require_signature: bool = False
) -> tuple[DetectionModel, Manifest]:
    payload, manifest = verify(path, env, require_signature)
    model = joblib.load(io.BytesIO(payload))
    if not isinstance(model, DetectionModel):
        raise ArtifactError(f"{resolve(path) / manifest.model_file}: not a DetectionModel ({type(model).__name__})")
    check_seen_regime(model, manifest, resolve(path) / manifest.model_file)
    return model, manifest


def check_seen_regime(model: DetectionModel, manifest: Manifest, source: Path) -> None:
    """The model's seen-vector table and rule are the ones training recorded (their sha256), or both
    are absent."""
    recorded = manifest.seen_regime
    if model.seen is None and recorded is None:
        return
    if model.seen is None or recorded is None:
        has = "has" if model.seen is not None else "has no"
        raise ArtifactError(f"{source}: the model {has} a seen regime and the manifest disagrees: refusing to load")
    actual = model.seen.digest()
    if not hmac.compare_digest(actual, recorded.sha256):
        raise ArtifactError(
            f"{source}: seen-vector table sha256 {actual[:12]}… does not match the manifest "
            f"({recorded.sha256[:12]}…): refusing to load"
        )
    # A bucket list that does not start at 1 or rise would send some vectors to the wrong bucket, and
    # too few scales would fail while scoring: both are refused here, before traffic.
    min_rows, shape = model.seen.min_rows, model.seen.bucket_scales.shape
    rising = min_rows[:1] == (1,) and all(low < high for low, high in itertools.pairwise(min_rows))
    if not rising or shape != (len(min_rows), len(model.classes)):
        raise ArtifactError(
            f"{source}: the seen rule's class scales {shape} do not fit its buckets from {list(min_rows)} "
            f"training rows and {len(model.classes)} classes: refusing to load"
        )
    held_out = model.seen.vectors.held_out
    if held_out is not None and held_out.shape != (len(model.seen.vectors), len(model.classes)):
        raise ArtifactError(
            f"{source}: the seen table's held-out probabilities {held_out.shape} do not fit its "
            f"{len(model.seen.vectors)} vectors and {len(model.classes)} classes: refusing to load"
        )


def load_checked(
    path: str | os.PathLike[str], env: Mapping[str, str] | None = None, require_signature: bool = False
) -> tuple[DetectionModel, Manifest, Path]:
    """`load_model`, then the checks a running detector needs before the model sees traffic: its
    features and classes fit the stream contract, and its canary scores exactly as at training time.
    Returns the model, its manifest and its version folder."""
    folder = resolve(path)
    model, manifest = load_model(folder, env, require_signature)
    unknown = sorted(set(manifest.features) - set(FEATURES))
    if unknown or not manifest.features:
        raise ArtifactError(f"{folder}: features {unknown or '(none)'} are not in the stream contract")
    if NORMAL not in model.classes or not set(model.classes) <= set(ATTACK_CLASSES):
        raise ArtifactError(f"{folder}: classes {list(model.classes)} do not fit the stream contract")
    check_canary(model, folder, manifest.canary)
    return model, manifest, folder
