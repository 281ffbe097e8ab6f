"""The local runs the dashboard shows: a records folder, read as ``fanout runs --local`` reads
it (:class:`fanout.runs.local.LocalRuns`), behind the dashboard's bulk reads, with the
folder's pipeline runs (:class:`fanout.runs.pipelines.LocalPipelineRuns`)."""

from __future__ import annotations

from pathlib import Path

from fanout.runs.local import LocalRuns
from fanout.runs.pipelines import LocalPipelineRuns
from fanout.ui.cached import Cached


def open_local(records_dir: Path, config_path: Path) -> Cached:
    """The local runs of ``records_dir``; runs started here use the config at
    ``config_path``."""
    return Cached(LocalRuns(records_dir, config_path), config_path,
                  pipelines=LocalPipelineRuns(records_dir, config_path))
