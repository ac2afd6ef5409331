"""The project's error hierarchy; each class carries the exit code a CLI maps it to."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class NidsError(Exception):
    """A failure worth a one-line message; never a traceback for the user."""

    exit_code = EXIT_FAILURE


class UsageError(NidsError):
    """Bad command line, configuration or input file: the user must change something."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """A configuration file or environment override is wrong."""


class InputError(UsageError):
    """An input data file is unreadable or not of a known shape."""


class ArtifactError(NidsError):
    """A model artifact is missing, tampered with, or built for other library versions."""

    exit_code = EXIT_USAGE


class AccessDenied(UsageError):
    """The broker refused this principal an operation (no ACL grants it) or its credentials: trying
    again cannot help, so the service stops and names who was refused what."""
