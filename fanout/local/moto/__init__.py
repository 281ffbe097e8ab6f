"""Every patch of moto the local mode makes: what correctness needs, and what only speeds it up."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Restore = Callable[[], None]
_MISSING = object()


def replace(owner: Any, **replacements: Any) -> Restore:
    """Set ``owner``'s attributes to ``replacements``; return what puts moto's own back
    exactly as they were (a staticmethod stays one, an inherited one is inherited again)."""
    saved = {name: vars(owner).get(name, _MISSING) for name in replacements}
    for name, value in replacements.items():
        setattr(owner, name, value)

    def restore() -> None:
        for name, value in saved.items():
            if value is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, value)

    return restore


def restoring(*restores: Restore) -> Restore:
    """One restore for several, undone in reverse order."""

    def restore() -> None:
        for undo in reversed(restores):
            undo()

    return restore
