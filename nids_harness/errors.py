"""The harness's one error."""

from __future__ import annotations

from nids_common.errors import NidsError


class HarnessError(NidsError):
    """A test, benchmark or demo cannot go on: a detector that never joined its group, a stream that
    made no progress, a broker that would not die."""
