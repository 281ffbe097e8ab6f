"""Explicit items read at run time (``items_from``): JSON array, JSON Lines or CSV.

They are parsed one way, streamed (:class:`ItemsSource`), whether they come from S3 (Expand)
or from a local copy (``fanout expand --items``), and checked in the same walk that counts
them (:func:`checked_stream`).
"""

from __future__ import annotations

import codecs
import csv
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Literal

from fanout.errors import Problem, SpecError
from fanout.spec.axes import BUILTIN_PLACEHOLDERS, PARAM_NAME, Scalar
from fanout.spec.templates import value_key

ItemsFormat = Literal["json", "jsonl", "csv"]
#: Problems of one kind listed in an error before the rest are only counted.
MAX_LISTED = 20
#: Bytes of an items_from object read at a time when it is streamed.
CHUNK_BYTES = 1 << 20


def items_from_format(uri: str) -> ItemsFormat:
    lower = uri.lower()
    if lower.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if lower.endswith(".csv"):
        return "csv"
    return "json"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def problems_of_row(n: int, row: Any, field: str) -> list[Problem]:
    """What is wrong with item ``n`` (none for a usable one)."""
    if not isinstance(row, dict):
        return [Problem(field, f"item {n} is not an object")]
    problems = [Problem(field, f"item {n} is empty")] if not row else []
    for key, value in row.items():
        if not isinstance(key, str) or not PARAM_NAME.fullmatch(key) or (
            key in BUILTIN_PLACEHOLDERS
        ):
            problems.append(Problem(field, f"item {n}: {key!r} is not a usable parameter name"))
        elif isinstance(value, str) and "\x00" in value:
            problems.append(Problem(field, f"item {n}: {key} holds a NUL byte (\\x00), which "
                                           "no command argument or environment value can "
                                           "carry"))
        elif not isinstance(value, str | int | float | bool) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            problems.append(Problem(
                field, f"item {n}: {key} must be a string, number or boolean"
            ))
    return problems


def capped(problems: list[Problem]) -> list[Problem]:
    if len(problems) <= MAX_LISTED:
        return problems
    rest = len(problems) - MAX_LISTED
    return [*problems[:MAX_LISTED], Problem(problems[0].field, f"... and {rest} more")]


class ItemsSource:
    """An ``items_from`` object's items, read from the object each time they are walked.

    Only a chunk of the object and one item are in memory at a time, whatever the format
    (a JSON array is read element by element), so a million rows are planned, checked and
    written out in the memory of a few. ``open_body`` opens the object anew (S3's
    ``GetObject`` body: anything with ``read(n)``); planning walks it twice (checks, then
    the widest overrides) and writing the manifest once more.
    Raises :class:`SpecError` naming ``items_from`` for content that is not items.
    """

    def __init__(self, open_body: Callable[[], Any], fmt: ItemsFormat) -> None:
        if fmt not in ("json", "jsonl", "csv"):
            raise SpecError([Problem("items_format", f"unknown format {fmt!r}")])
        self._open = open_body
        self.format = fmt

    def __iter__(self) -> Iterator[Any]:
        text = _text_chunks(self._open())
        if self.format == "jsonl":
            for n, line in enumerate(_lines(text), start=1):
                if line.strip():
                    try:
                        yield json.loads(line, parse_constant=_no_constant)
                    except ValueError as exc:
                        raise SpecError([Problem(
                            "items_from", f"line {n} is not JSON ({exc})")]) from None
        elif self.format == "csv":
            reader = csv.DictReader(_lines(text))
            for row in reader:
                if None in row or None in row.values():
                    raise SpecError([Problem(
                        "items_from", f"CSV line {reader.line_num} does not match the header"
                    )])
                yield row
        else:
            yield from _array_elements(text)


def _text_chunks(body: Any) -> Iterator[str]:
    """The body's text, chunk by chunk (UTF-8, a leading byte order mark dropped)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    while True:
        chunk = body.read(CHUNK_BYTES)
        try:
            text = decoder.decode(chunk or b"", final=not chunk)
        except UnicodeDecodeError as exc:
            raise SpecError([Problem("items_from", f"not UTF-8 text ({exc.reason})")]) from None
        if text:
            yield text
        if not chunk:
            return


def _lines(chunks: Iterable[str]) -> Iterator[str]:
    """Lines with their endings, across chunk boundaries (what ``csv`` reads)."""
    rest = ""
    for chunk in chunks:
        lines = (rest + chunk).splitlines(keepends=True)
        rest = lines.pop() if lines and not lines[-1].endswith(("\n", "\r")) else ""
        yield from lines
    if rest:
        yield rest


def _array_elements(chunks: Iterable[str]) -> Iterator[Any]:
    """The elements of one JSON array, decoded one at a time as the text arrives."""
    decoder = json.JSONDecoder(parse_constant=_no_constant)
    source = iter(chunks)
    buffer, pos, done = "", 0, False

    def more() -> bool:
        nonlocal buffer, pos, done
        chunk = next(source, None)
        if chunk is None:
            done = True
            return False
        buffer, pos = buffer[pos:] + chunk, 0
        return True

    def skip_space() -> str:
        nonlocal pos
        while True:
            while pos < len(buffer) and buffer[pos] in " \t\r\n":
                pos += 1
            if pos < len(buffer) or not more():
                return buffer[pos] if pos < len(buffer) else ""

    def bad(why: str) -> SpecError:
        return SpecError([Problem("items_from", f"not a JSON array ({why})")])

    if skip_space() != "[":
        raise SpecError([Problem("items_from", "not a JSON array of objects")])
    pos += 1
    if skip_space() == "]":
        pos += 1
    else:
        while True:
            skip_space()
            while True:
                try:
                    # A value is decoded only once the text holding all of it has arrived.
                    value, end = decoder.raw_decode(buffer, pos)
                except ValueError as exc:
                    if done or not more():
                        raise bad(str(exc)) from None
                    continue
                if end == len(buffer) and not done and more():
                    continue  # a number may go on in the next chunk: decode it again whole
                break
            pos = end
            yield value
            after = skip_space()
            pos += 1
            if after == "]":
                break
            if after != ",":
                raise bad(f"expected ',' or ']' at {after!r}" if after else "unterminated")
    if skip_space():
        raise bad("text after the array")


# --- the checks of explicit items (shared by items, items_from and include) -------------------

Params = dict[str, Scalar]
#: An item's parameters in a form that compares as values do (1 == 1.0, "1" != 1).
RowKey = frozenset[tuple[str, tuple[bool, Any]]]


def missing_placeholders(rows: list[Params], used: set[str], field: str,
                          first: int = 0) -> list[Problem]:
    problems: list[Problem] = []
    for n, row in enumerate(rows, start=first):
        if not isinstance(row, dict):
            continue
        missing = sorted(used - set(row))
        if missing:
            where = f"{field}[{n}]" if field != "items_from" else field
            lead = "" if field != "items_from" else f"item {n}: "
            names = ", ".join("{" + m + "}" for m in missing)
            problems.append(Problem(where, f"{lead}has no value for {names} (used by templates)"))
    return capped(problems)


def excluded_row(row: Params, exclude: list[dict[str, Scalar]]) -> bool:
    return any(
        all(k in row and value_key(row[k]) == value_key(v) for k, v in pattern.items())
        for pattern in exclude
    )


def canonical(params: Mapping[str, Any]) -> RowKey:
    return frozenset((k, value_key(v)) for k, v in params.items())


class StreamedRows:
    """An ``items_from`` object's items less the excluded ones, streamed at each walk;
    their count is known from the checking walk."""

    def __init__(self, source: ItemsSource, exclude: list[dict[str, Scalar]],
                 count: int) -> None:
        self._source, self._exclude, self._count = source, exclude, count

    def __iter__(self) -> Iterator[Params]:
        return (row for row in self._source if not excluded_row(row, self._exclude))

    def __len__(self) -> int:
        return self._count


def checked_stream(
    source: ItemsSource, exclude: list[dict[str, Scalar]], used: set[str],
    include: list[Params],
) -> tuple[StreamedRows, set[RowKey], list[Problem]]:
    """One walk of a streamed ``items_from``: its problems (listed up to ``MAX_LISTED``
    of each kind, the rest counted), how many items it keeps, and which of ``include``
    repeat one of them — holding no item beyond the one being read."""
    kinds: dict[str, list[Problem]] = {"row": [], "missing": []}
    extra = {"row": 0, "missing": 0}
    wanted = {canonical(i) for i in include}
    repeated: set[RowKey] = set()
    kept = seen = 0
    unmatched = set(range(len(exclude)))  # the patterns no item has matched yet
    for n, row in enumerate(source):
        seen += 1
        found = {"row": problems_of_row(n, row, "items_from"),
                 "missing": missing_placeholders([row], used, "items_from", first=n)}
        for kind, problems in found.items():
            room = MAX_LISTED - len(kinds[kind])
            kinds[kind] += problems[:max(room, 0)]
            extra[kind] += max(len(problems) - max(room, 0), 0)
        if found["row"]:
            continue
        if exclude and excluded_row(row, exclude):
            unmatched -= {i for i in unmatched if excluded_row(row, [exclude[i]])}
            continue
        kept += 1
        if wanted and canonical(row) in wanted:
            repeated.add(canonical(row))
    if not seen:
        raise SpecError([Problem("items_from", "holds no items")])
    problems = []
    for kind, listed in kinds.items():
        problems += listed
        if extra[kind]:
            problems.append(Problem(listed[0].field, f"... and {extra[kind]} more"))
    problems += [Problem(f"exclude[{i}]", f"{json.dumps(exclude[i])} matches no item of "
                                          "items_from; check its names and values (2020 "
                                          "and \"2020\" differ)") for i in sorted(unmatched)]
    return StreamedRows(source, exclude, kept), repeated, problems
