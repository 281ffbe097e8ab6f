"""Errors that reach a user: each names every field that is wrong, in one message."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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


def problems_from(exc: ValidationError, prefix: str = "") -> list[Problem]:
    """Pydantic's errors as problems, with messages a user can act on."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = [p for p in err["loc"] if not _is_union_tag(p)]
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        elif message.startswith("Assertion failed, "):
            message = message[len("Assertion failed, ") :]
        problem = Problem(dotted(loc, prefix), message)
        if problem not in problems:
            problems.append(problem)
    return problems


def _is_union_tag(part: int | str) -> bool:
    # Pydantic names the union member it tried:
    # "list[int]", "literal['a','b']", "function-after[...]".
    return isinstance(part, str) and (
        "[" in part or part.startswith(("function-", "literal", "axis:"))
    )
