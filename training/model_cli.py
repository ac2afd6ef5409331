"""nids-model: the model store's versions; promote one, or roll back, while detectors run.

    nids-model list                 versions with their validation figures, `*` marks latest
    nids-model show VERSION         its manifest: data, features, models, figures, canary
    nids-model promote VERSION      verify it (checksum, signature, libraries, contract, canary), then
                                    re-point latest at it atomically
    nids-model rollback             re-point latest at the version it pointed at before

Detectors watching models/latest pick the change up by themselves (detector.model_poll_s, or SIGHUP).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import msgspec

from nids_common.cli import EXIT_CODES_HELP, run
from nids_common.errors import EXIT_OK, ArtifactError, UsageError
from nids_model import artifact
from nids_model.manifest import Manifest


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="nids-model",
        description=__doc__,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--models", default="models", help="the models folder (default: models)")
    commands = p.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="versions and their validation figures")
    show = commands.add_parser("show", help="one version's manifest")
    show.add_argument("version")
    promote = commands.add_parser("promote", help="verify a version, then point latest at it")
    promote.add_argument("version")
    commands.add_parser("rollback", help="point latest back at the version before")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return run(lambda: model_command(args), "nids-model")


def model_command(args: argparse.Namespace) -> int:
    models = Path(args.models)
    if not models.is_dir():
        raise UsageError(f"{models}: no models folder")
    if args.command == "list":
        print(list_versions(models))
    elif args.command == "show":
        print(show(models, args.version))
    elif args.command == "promote":
        promote(models, args.version)
        print(f"nids-model: latest → {args.version}")
    else:
        version = rollback(models)
        print(f"nids-model: latest → {version} (rolled back)")
    return EXIT_OK


def current(models: Path) -> str | None:
    link = models / artifact.LATEST
    return link.resolve().name if link.exists() else None


def list_versions(models: Path) -> str:
    latest = current(models)
    # Macro-F1 cross-validated on grouped folds (novel vectors) and plain folds (random rows), then the
    # single validation split's figures.
    header = (
        f"{'F1 grouped':>10} {'F1 plain':>9} {'label acc':>9} {'macro-F1':>9} {'threshold':>9} {'FP rate':>8} "
        f"{'train rows':>10}"
    )
    lines = [f"  {'version':<26} {header}  created"]
    for version in artifact.versions(models):
        marker = "*" if version == latest else " "
        try:
            manifest = _manifest(models, version)
        except ArtifactError as exc:
            # One unreadable version (an older format, say) must not hide the others.
            lines.append(f"{marker} {version:<26} cannot be read: {exc}")
            continue
        figures, cv = manifest.validation_metrics, manifest.cross_validation
        # The threshold and the share of validation Normal flows it alerts on (operating_point).
        lines.append(
            f"{marker} {version:<26} {cv.grouped.folds.attack_cat_macro_f1_mean:10.4f} "
            f"{cv.plain.folds.attack_cat_macro_f1_mean:9.4f} {figures.label_accuracy:9.4f} "
            f"{figures.attack_cat_macro_f1:9.4f} {manifest.decision_threshold:9.4f} "
            f"{manifest.operating_point.validation.false_positive_rate:8.4f} "
            f"{manifest.rows.train:10,}  {manifest.created}"
        )
    return "\n".join(lines)


def show(models: Path, version: str) -> str:
    manifest = _manifest(models, version)
    shown = msgspec.to_builtins(manifest)
    del shown["category_vocabularies"], shown["canary"]["expected"]
    return json.dumps(shown, indent=2, sort_keys=True)


def promote(models: Path, version: str, action: str = "promote") -> None:
    """Verify `version` as a detector will (nothing is re-pointed if it fails), then re-point latest."""
    folder = _folder(models, version)
    artifact.load_checked(folder)
    artifact.point_latest(models, version, action)


def rollback(models: Path) -> str:
    """Re-point latest at the newest version promoted before the current one that still verifies;
    the ones that do not are named on stderr and passed over."""
    stack = [version for version in artifact.promotion_stack(models) if (models / version).is_dir()]
    latest = current(models)
    for version in reversed([version for version in stack[:-1] if version != latest]):
        try:
            promote(models, version, action="rollback")
        except ArtifactError as exc:
            print(f"nids-model: passing over {version}: {exc}", file=sys.stderr)
            continue
        return version
    raise UsageError(f"{models}: no earlier version that verifies to roll back to ({artifact.HISTORY_FILE})")


def _folder(models: Path, version: str) -> Path:
    folder = models / version
    if version in ("", ".", "..") or "/" in version or not (folder / artifact.MANIFEST_FILE).is_file():
        raise UsageError(f"{models}: no model version {version!r} (nids-model list shows them)")
    return folder


def _manifest(models: Path, version: str) -> Manifest:
    return artifact.read_manifest(_folder(models, version))


if __name__ == "__main__":
    sys.exit(main())
