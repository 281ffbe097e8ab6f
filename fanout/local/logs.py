"""Task logs of a local run, read back from its records directory (while it runs, those of
the attempts settled so far)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fanout.runtime.packing import item_lines

DEFAULT_RECORDS_DIR = Path(".fanout/runs")


def attempt_lines(messages: list[str], index: int, attempt: int, *, packed: bool) -> list[str]:
    """An attempt's lines of its task's log stream: all of them, or, for a task that
    carried several items (docs/decisions/0020), only the item's own, unprefixed."""
    if not packed:
        return messages
    return list(item_lines(messages, index, attempt))
_NAME = re.compile(r"^item-(\d+)-attempt-(\d+)-([0-9a-f]+)\.log$")


def local_log_lines(run_id: str, index: int, attempt: int | None = None,
                    records_dir: Path = DEFAULT_RECORDS_DIR) -> list[dict[str, Any]] | None:
    """The item's lines, attempt by attempt; None when no local run has that id.

    An item the run does not have, or an attempt the item did not make, is a UsageError
    (exit 2) that says what the run has; an attempt that wrote nothing gives no lines.
    """
    from fanout.errors import Problem, UsageError

    logs = records_dir / run_id / "logs"
    summary_path = records_dir / run_id / "summary.json"
    items: dict[int, Any] = {}
    if not summary_path.is_file():
        if not (records_dir / run_id / "records.jsonl").is_file():
            return None
        # A run still going: the logs of its settled attempts so far (fanout.local.live).
    else:
        try:
            summary = json.loads(summary_path.read_text())
            items = {int(i["index"]): i for i in summary.get("items", [])}
        except (ValueError, KeyError, TypeError, AttributeError):
            items = {}
    if items and index not in items:
        raise UsageError([Problem("INDEX", f"run {run_id} has no item {index} (its items are "
                                           f"0 to {max(items)})")])
    made = int(items[index].get("attempts") or 0) if index in items else None
    if attempt is not None and made is not None and not 1 <= attempt <= made:
        never = "was never launched" if made == 0 else f"made {made} attempt(s)"
        raise UsageError([Problem("--attempt", f"item {index} of run {run_id} {never}; "
                                               f"there is no attempt {attempt}")])
    if made == 0:
        raise UsageError([Problem("INDEX", f"item {index} of run {run_id} has no logs (it "
                                           "was never launched)")])
    found: list[tuple[int, Path]] = []
    for path in logs.glob(f"item-{index}-attempt-*.log"):
        match = _NAME.match(path.name)
        if match and int(match[1]) == index and (attempt is None or int(match[2]) == attempt):
            found.append((int(match[2]), path))
    lines: list[dict[str, Any]] = []
    for number, path in sorted(found):
        lines += [{"attempt": number, "timestamp": None, "message": text}
                  for text in path.read_text().splitlines()]
    return lines


def task_items(task: Any, tags: Mapping[Any, Any]) -> list[tuple[Any, Any]]:
    """The (item, attempt) pairs a task ran: its tags', or a packed task's batch's."""
    if "fanout:batch" not in tags:
        return [(tags.get("fanout:item"), tags.get("fanout:attempt"))]
    try:
        batch = json.loads(Path(task.command[1]).read_text())
    except (OSError, ValueError, IndexError):
        return []
    return [(int(i["index"]), int(i["attempt"])) for i in batch.get("items", [])]
