"""Errors that reach a user: each names every field that is wrong, in one message."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (a dotted path) and what."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class FanoutInputError(ValueError):
    """Bad input: a run spec, a deployment config, a CLI argument."""

    what = "input"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__(self.message)

    @property
    def fields(self) -> list[str]:
        return [p.field for p in self.problems]

    @property
    def message(self) -> str:
        if len(self.problems) == 1:
            return f"invalid {self.what}: {self.problems[0]}"
        listed = "; ".join(str(p) for p in self.problems)
        return f"invalid {self.what} ({len(self.problems)} problems): {listed}"


class SpecError(FanoutInputError):
    """A run spec that must be rejected before anything is launched."""

    what = "run spec"


class ConfigError(FanoutInputError):
    """A deployment config (cdk.json context) that must fail the synth."""

    what = "fanout config"


class UsageError(FanoutInputError):
    """A command-line argument that cannot be used (the CLI exits 2)."""

    what = "argument"


def dotted(loc: Iterable[int | str], prefix: str = "") -> str:
    """``("params", "year", "range", "stop")`` -> ``params.year.range.stop``; ints as ``[i]``."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


#: What a string pattern means, in words (registered by :func:`described`).
_PATTERN_MEANINGS: dict[str, str] = {}


def described(pattern: str, meaning: str) -> str:
    """Register what ``pattern`` means, for the message when a value does not match it."""
    _PATTERN_MEANINGS[pattern] = meaning
    return pattern


#: Pydantic's type errors, as what the field needs (a union lists each of its members).
_NEEDS = {
    "int_type": "a whole number", "int_parsing": "a whole number",
    "int_from_float": "a whole number", "float_type": "a number", "float_parsing": "a number",
    "string_type": "a string", "bool_type": "true or false", "bool_parsing": "true or false",
    "list_type": "a list ([...])", "dict_type": "an object ({...})",
    "model_type": "an object ({...})", "model_attributes_type": "an object ({...})",
    "datetime_type": "an ISO 8601 date-time", "datetime_parsing": "an ISO 8601 date-time",
    "datetime_from_date_parsing": "an ISO 8601 date or date-time (like 2024-01-31 or "
                                  "2024-01-31T02:00:00Z)",
    "none_required": "null",
}


def _shown(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, bool | int | float | str | None) else None
    return text if text is not None and len(text) <= 60 else type(value).__name__


def _message(err: Mapping[str, Any]) -> str:
    kind, ctx, got = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "extra_forbidden":
        return "unknown key; remove it (or check its spelling)"
    if kind == "missing":
        return "is required; add it"
    if kind in _NEEDS:
        return f"must be {_NEEDS[kind]}, not {_shown(got)}"
    bounds = {"greater_than_equal": "at least", "less_than_equal": "at most",
              "greater_than": "more than", "less_than": "less than"}
    if kind in bounds:
        limit = next(iter(ctx.values()), "")
        return f"must be {bounds[kind]} {limit}, not {_shown(got)}"
    if kind in ("string_too_short", "too_short"):
        n = ctx.get("min_length")
        return "must not be empty" if n == 1 else f"must have at least {n} " + (
            "characters" if kind.startswith("string") else "entries")
    if kind in ("string_too_long", "too_long"):
        n = ctx.get("max_length")
        return f"must have at most {n} " + ("characters" if kind.startswith("string")
                                             else "entries") + f" (it has {len(got or '')})"
    if kind in ("enum", "literal_error"):
        return f"must be one of {ctx.get('expected', '')}, not {_shown(got)}"
    if kind == "string_pattern_mismatch":
        meaning = _PATTERN_MEANINGS.get(str(ctx.get("pattern")))
        if meaning:
            return f"{_shown(got)} is not {meaning}"
        return f"{_shown(got)} is not in the form this field takes"
    message = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix):]
    return message


def problems_from(exc: ValidationError, prefix: str = "") -> list[Problem]:
    """Pydantic's errors as problems, in the words of the field's meaning, with the fix.

    A union (an item value: a string, a number or a boolean) that none of its members
    accepts is one problem listing what the field takes, not one per member.
    """
    problems: list[Problem] = []
    needs: dict[str, list[str]] = {}
    for err in exc.errors(include_url=False):
        loc = [p for p in err["loc"] if not _is_union_tag(p)]
        if _is_member_name(loc):
            loc = loc[:-1]
        field = dotted(loc, prefix)
        tagged = len(loc) != len(err["loc"])
        if tagged and err["type"] in _NEEDS:
            if field not in needs:
                needs[field] = []
                problems.append(Problem(field, ""))  # filled in below, keeping the order
            if _NEEDS[err["type"]] not in needs[field]:
                needs[field].append(_NEEDS[err["type"]])
            needs.setdefault(f"{field}#input", [_shown(err.get("input"))])
            continue
        problem = Problem(field, _message(err))
        if problem not in problems:
            problems.append(problem)
    out = []
    for problem in problems:
        if problem.field in needs and not problem.message:
            listed = needs[problem.field]
            if "a number" in listed and "a whole number" in listed:
                listed.remove("a whole number")
            listed = ["true/false" if n == "true or false" else n for n in listed]
            what = listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " or " + listed[-1]
            out.append(Problem(problem.field,
                               f"must be {what}, not {needs[problem.field + '#input'][0]}"))
        else:
            out.append(problem)
    return out


def _is_member_name(loc: Sequence[int | str]) -> bool:
    # A union of plain types names its member by the type: ("items", 0, "code", "str").
    return bool(loc) and loc[-1] in ("str", "int", "float", "bool", "none")


def _is_union_tag(part: int | str) -> bool:
    # Pydantic names the union member it tried:
    # "list[int]", "literal['a','b']", "function-after[...]".
    return isinstance(part, str) and (
        "[" in part or part.startswith(("function-", "literal", "axis:"))
    )
