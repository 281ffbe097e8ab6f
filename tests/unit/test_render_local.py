"""``fanout local``'s end text: its cost line is the one ``fanout status`` prints."""

from __future__ import annotations

import io

from rich.console import Console

from fanout.cli.render import cost_line
from fanout.cli.render_local import print_summary
from fanout.local.summary import ItemSummary, RunSummary

COST = {"compute_usd": 0.0025, "control_plane_usd": 0.000356, "total_usd": 0.002856,
        "prices_as_of": "2026-06-17"}


def _printed(summary: RunSummary) -> list[str]:
    out = io.StringIO()
    print_summary(Console(file=out, width=200, color_system=None), summary)
    return out.getvalue().splitlines()


def test_the_local_summary_prints_the_cost_line_status_prints_labelled_for_aws() -> None:
    # Given a finished local run of one item with its estimated cost
    summary = RunSummary(
        run_id="r-1", job="noop", status="SUCCEEDED", total=1, succeeded=1, failed=0,
        timed_out=0, aborted=0, elapsed_seconds=1.25, records=".fanout/runs/r-1", cost=COST,
        items=[ItemSummary(index=0, params={"n": 1}, status="SUCCEEDED", attempts=1,
                           exit_code=0, duration_seconds=0.5)])
    lines = _printed(summary)
    # Then its closing sentence is as the README shows it
    assert "SUCCEEDED: 1 items, 1 succeeded, 0 failed, 0 timed out, 0 aborted in 1.2s" in lines
    # And its cost line is fanout status's, called what the run would have cost on AWS
    assert ("estimated cost on AWS: $0.002856  compute $0.002500  control plane $0.000356"
            "  prices of 2026-06-17") in lines
    assert cost_line(COST) == ("cost (estimate): $0.002856  compute $0.002500  control plane"
                               " $0.000356  prices of 2026-06-17")
    # And a run never recorded has no cost line
    lines = _printed(RunSummary(**{**summary.__dict__, "cost": None}))
    assert not any(line.startswith("estimated cost") for line in lines)
