"""Task logs of a local run, read back from its records directory after the run has ended."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

DEFAULT_RECORDS_DIR = Path(".fanout/runs")
_NAME = re.compile(r"^item-(\d+)-attempt-(\d+)-([0-9a-f]+)\.log$")


def local_log_lines(run_id: str, index: int, attempt: int | None = None,
                    records_dir: Path = DEFAULT_RECORDS_DIR) -> list[dict[str, Any]] | None:
    """The item's lines, attempt by attempt; None when no local run has that id."""
    logs = records_dir / run_id / "logs"
    if not (records_dir / run_id / "summary.json").is_file():
        return None
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
