"""The exit codes of ``fanout`` and the run status each one reports."""

from __future__ import annotations

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def exit_for(status: str) -> int:
    """0 for a run that succeeded, 2 for one rejected (bad input), else 1."""
    if status == "SUCCEEDED":
        return EXIT_OK
    if status == "REJECTED":
        return EXIT_BAD_INPUT
    return EXIT_RUN_FAILED
