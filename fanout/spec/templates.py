"""Templates: the ``{name}`` placeholders of command and environment, and rendering them.

Also how a value reads as text and as JSON in a rendered item, and the container
overrides of RunTask that the 8 KiB check measures.
"""

from __future__ import annotations

import json
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fanout.schema import BUCKET_NAME_MAX, OUTPUTS_KEY, container_overrides
from fanout.spec.axes import PARAM_NAME, Scalar

if TYPE_CHECKING:
    from fanout.spec.model import RunSettings

#: A run id (the Step Functions execution name) is at most this long.
RUN_ID_MAX = 80
#: The widest value of FANOUT_ATTEMPT that the overrides check assumes.
ATTEMPT_WIDEST = "999"


def placeholders(template: str) -> list[str]:
    """The ``{name}`` fields of a template; raises ValueError on a malformed one."""
    names = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(
            f"bad template {template!r}: {exc} (write {{{{ and }}}} for braces)"
        ) from None
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if not PARAM_NAME.fullmatch(field) or spec or conversion:
            raise ValueError(f"bad placeholder {{{field}}} in {template!r}: use {{name}} only")
        names.append(field)
    return names


# --- values as text and JSON ----------------------------------------------------------------


def text_of(value: Scalar) -> str:
    """A parameter as it appears in a rendered command or environment value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def escaped(text: str) -> str:
    """``text`` JSON-escaped, without the quotes (escaping is per character, so it joins)."""
    return json.dumps(text)[1:-1]


def value_key(value: Any) -> tuple[bool, Any]:
    # Equality as JSON sees it: true is not 1 (Python says True == 1).
    return (type(value) is bool, value)


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


# --- templates -------------------------------------------------------------------------------

Segments = list[tuple[str, str | None]]  # (literal text, placeholder name or None)


def _segments(template: str) -> Segments:
    return [(lit, field) for lit, field, _, _ in string.Formatter().parse(template)]


def _render(segments: Segments, texts: Mapping[str, str]) -> str:
    return "".join(lit + (texts[field] if field is not None else "") for lit, field in segments)


@dataclass(frozen=True)
class Templates:
    """The run's command and environment templates, parsed once."""

    command: list[Segments]
    environment: list[tuple[str, Segments]]

    @classmethod
    def of(cls, settings: RunSettings) -> Templates:
        return cls(
            command=[_segments(t) for t in settings.command],
            environment=[(name, _segments(t)) for name, t in settings.environment.items()],
        )

    def names(self) -> set[str]:
        every = [*self.command, *(segs for _, segs in self.environment)]
        return {field for segs in every for _, field in segs if field is not None}

    def render(self, texts: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
        command = [_render(segs, texts) for segs in self.command]
        environment = {name: _render(segs, texts) for name, segs in self.environment}
        return command, environment


def widest_output(run_id: str, index: str) -> str:
    """The widest ``FANOUT_OUTPUT`` of an item on AWS: its prefix in a bucket whose name is
    as long as S3 allows (a local run's folder is measured as it is)."""
    return f"s3://{'b' * BUCKET_NAME_MAX}/{OUTPUTS_KEY.format(run_id=run_id, index=index)}"


def overrides_size(
    container: str, command: list[str], environment: Mapping[str, str], *, index_digits: int = 8
) -> int:
    """Characters of the widest overrides any attempt of this item can have (compact JSON,
    run id of the widest allowed length, attempt 999, the output location in a bucket of
    the widest name) — what ECS's 8 KiB limit counts."""
    run_id, index = "r" * RUN_ID_MAX, "9" * index_digits
    overrides = container_overrides(
        container, command, environment, run_id=run_id, index=index, attempt=ATTEMPT_WIDEST,
        output=widest_output(run_id, index),
    )
    return len(dumps(overrides))
