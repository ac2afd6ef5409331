"""CLI plumbing shared by every console script: logging set-up and error → exit-code mapping."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from nids_common.errors import EXIT_FAILURE, NidsError

log = logging.getLogger("nids")

EXIT_CODES_HELP = "exit codes: 0 ok, 1 runtime failure, 2 bad usage, config or input"


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )


def run(work: Callable[[], int], program: str) -> int:
    """Run `work`, turning the project's errors into one line on stderr and their exit code."""
    try:
        return work()
    except NidsError as exc:
        print(f"{program}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{program}: interrupted", file=sys.stderr)
        return 130
    except Exception:
        log.exception("%s: unexpected failure", program)
        return EXIT_FAILURE
