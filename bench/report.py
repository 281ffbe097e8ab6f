"""Write docs/benchmarks.md from bench/out/*.json (what ``make bench`` ends with)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
DOC = HERE.parent / "docs" / "benchmarks.md"


def load(out: Path) -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json"))}


def _cost(r: dict[str, Any]) -> list[str]:
    lines = ["## Control-plane cost per 1,000 items", "",
             f"Command: `.venv/bin/python {r['command']}`. Measured from local runs of the "
             "synthesized stack (moto): transitions from the parent execution's history and "
             "the map run's child events; Lambda requests and GB-seconds (memory from the "
             "template, duration measured in process, rounded up to 1 ms); DynamoDB write "
             "units counted by a botocore hook (PutItem/UpdateItem/TransactWriteItems, size "
             "in 1 KB units, transactional writes x2); S3 requests and events counted.", "",
             "| figure | happy path | 10% retried once |", "| --- | --- | --- |"]
    happy, retry = r["runs"]["happy"], r["runs"]["retry_10pct"]
    for key in happy["per_item"]:
        lines.append(f"| {key} per item | {happy['per_item'][key]} | {retry['per_item'][key]} |")
    for key in happy["usd_per_1000"]:
        lines.append(f"| {key} $/1000 items | {happy['usd_per_1000'][key]} | "
                     f"{retry['usd_per_1000'][key]} |")
    lines += [f"| **total $/1000 items** | **{happy['usd_per_1000_total']}** | "
              f"**{retry['usd_per_1000_total']}** |",
              f"| items, status | {happy['items']}, {happy['status']} | "
              f"{retry['items']}, {retry['status']} |", "",
              *_storm_costs(happy, r.get("storms") or {}),
              f"Targets: at most {r['targets']['transitions_per_item']} transitions per item "
              f"(happy path), at most ${r['targets']['usd_per_1000']} per 1,000 items. "
              f"Met: {r['met']}.", "",
              "Lambda durations are wall time in one process with up to 100 items in flight "
              "on 2 shared cores, so they overstate what Lambda would bill; they are a "
              "ceiling. DynamoDB reads are counted per call, not priced by size.", "",
              f"### Prices (us-east-1, retrieved {r['prices_retrieved']})", ""]
    for name, p in r["prices"].items():
        usd = "not found" if p["usd"] is None else f"${p['usd']:.10g} per {p['unit']}"
        lines.append(f"- {name}: {usd} — list price as published on {p['source']}, "
                     f"retrieved from the stored copy ({p['note']}).")
    lines += ["", "### The alternatives (published figures, not measured)", ""]
    for alt in r["alternatives"]:
        lines.append(f"- **{alt['name']}**: {alt['figure']} — as published on "
                     f"{alt['source']}, retrieved from the stored copy.")
    return lines


def _storm_costs(happy: dict[str, Any], storms: dict[str, Any]) -> list[str]:
    """The launch storm's cost per 1,000 items (bench/launch.py) beside the happy path."""
    if not storms:
        return []
    lines = ["Under a launch storm (bench/launch.py: every item at once against the bucket):",
             "", "| run | $ per 1,000 items | transitions per item |", "| --- | --- | --- |",
             f"| happy path (above) | {happy['usd_per_1000_total']} | "
             f"{happy['per_item']['transitions']} |"]
    for label, storm in storms.items():
        for n, x in storm["runs"].items():
            lines.append(f"| storm, {n} items, {label} ({storm['commit']}) | "
                         f"{x['usd_per_1000']} | {x['transitions_per_item']} |")
    return [*lines, ""]


def _launch(r: dict[str, Any], before: dict[str, Any] | None = None) -> list[str]:
    """The launch storm, before (the commit before the launch gate) and after, side by side."""
    t = r["targets"]
    sides = [("after", r)] + ([("before", before)] if before else [])
    lines = ["## Launch storm: every item at once against Fargate's launch bucket", "",
             f"Command: `.venv/bin/python {r['command']}` (after)"
             + (f"; the same script on the tree of commit {before['machine']['commit']} "
                f"(before): `{before['command']}`" if before else "") + ". "
             f"Fargate's bucket (burst 100, 20 launches/s) scaled by {r['scale']:g}: the "
             "largest scale the emulation serves on this machine, where the bucket, not the "
             "emulated control plane, sets the pace. `max_concurrency` = the item count; the "
             "synthesized state machine and the real handlers; RunTask calls counted at the "
             "emulated Fargate; transitions from the executions' histories; cost priced as "
             "bench/cost.py prices it.", "",
             "| figure | target | " + " | ".join(
                 f"{n} items, {side} ({x.get('commit') or s['machine']['commit']})"
                 for side, s in sides for n, x in s["runs"].items()) + " |",
             "| --- | --- | " + " | ".join("---" for side, s in sides for _ in s["runs"]) + " |"]
    rows = [
        ("RunTask calls", "", lambda x: x["run_task"]["calls"]),
        ("throttled RunTask calls", "", lambda x: x["run_task"].get("throttled", 0)),
        ("throttled / launches", f"<= {t['throttled_share']:.0%}",
         lambda x: "n/a" if x["throttled_share"] is None else f"{x['throttled_share']:.1%}"),
        ("refused for capacity", "", lambda x: x["run_task"].get("capacity", 0)),
        ("billed transitions per item", f"<= {t['transitions_per_item']}",
         lambda x: x["transitions_per_item"]),
        ("Launch invocations", "", lambda x: x["invocations"].get("launch", 0)),
        ("dispatcher invocations", "", lambda x: x["invocations"].get("dispatch", 0)),
        ("launch span (s)", "", lambda x: x["launch_span_seconds"]),
        ("ideal (N - burst) / rate (s)", "", lambda x: x["ideal_seconds"]),
        ("span / ideal", f"<= {t['span_ratio']}", lambda x: x["ratio"]),
        ("tasks launched", "N", lambda x: x["launches"]),
        ("items lost (not SUCCEEDED)", "0", lambda x: x["lost"]),
        ("most attempts of an item", "1", lambda x: x["max_attempts"]),
        ("control plane $ per 1,000 items, as measured", f"<= ${t['usd_per_1000']}",
         lambda x: x["usd_per_1000"]),
        ("... of which Lambda duration (CPU time; the dispatcher's wall time)", "",
         lambda x: x["cost"]["usd_per_1000"]["lambda_duration"]),
        ("... without Lambda duration", "",
         lambda x: round(x["usd_per_1000"] - x["cost"]["usd_per_1000"]["lambda_duration"], 4)),
        ("stopped by the bench", "", lambda x: "yes" if x.get("stopped_by_bench") else "no"),
        ("elapsed (s)", "", lambda x: x["elapsed_seconds"]),
    ]
    for name, target, get in rows:
        lines.append(f"| {name} | {target} | " + " | ".join(
            str(get(x)) for side, s in sides for x in s["runs"].values()) + " |")
    lines += ["", f"Met (after): {r['met']}.", "",
              "Lambda duration is billed here as each invocation's CPU time (its handler and "
              "the emulated AWS answering it in the same thread), the dispatcher's as its "
              "wall time (it waits for permits on purpose, and Lambda bills that). One "
              "process runs every handler and thousands of child executions on 2 cores: a "
              "Launch's wall time there is mostly waiting for the others, which Lambda, one "
              "sandbox per invocation, would not bill. On AWS each call to DynamoDB waits a "
              "few milliseconds on the network instead; the line without Lambda duration "
              "bounds the bill from below."]
    return lines


def _expand(r: dict[str, Any]) -> list[str]:
    f, s = r["fanout"], r["straightforward"]
    return ["## Expansion: 1,000,000 items to JSON Lines", "",
            "Command: `.venv/bin/python bench/expand.py`. A two-axis matrix with command and "
            "environment templates, written as JSON Lines, against the straightforward loop "
            "(`itertools.product`, `str.format` per argument, `json.dumps` per item) in the "
            "same run, each in its own process.", "",
            "| | items/s | seconds | peak RSS (MB) |", "| --- | --- | --- | --- |",
            f"| fanout | {f['items_per_second']:,} | {f['seconds']} | {f['peak_rss_mb']} |",
            f"| straightforward loop | {s['items_per_second']:,} | {s['seconds']} | "
            f"{s['peak_rss_mb']} |", "",
            f"Ratio **{r['ratio']}x** (target >= {r['targets']['ratio_at_least']}x); same "
            f"output byte for byte: {r['same_output']}; peak RSS target under "
            f"{r['targets']['peak_rss_mb_under']} MB; met: {r['met']}."]


def _coldstart(r: dict[str, Any]) -> list[str]:
    lines = ["## Lambda cold start: import + first invocation, against a bare boto3 handler", "",
             f"Command: `.venv/bin/python bench/coldstart.py`. Median of {r['repeats']} fresh "
             "interpreters per figure, AWS answered by moto's server on this machine. "
             "`import` is the handler module alone (init); `+ first call` adds its first "
             "invocation on a real event: Powertools' decorators, the models, the logic, "
             "the boto3 clients and calls. The bare handler imports boto3, creates the same "
             "clients and makes the very same calls (recorded from fanout's), nothing else. "
             "Both run with Lambda's `LAMBDA_TASK_ROOT` set (the X-Ray SDK then takes "
             "Lambda's sampling decision; outside Lambda it builds an X-Ray client for "
             "central sampling, about 100 ms no function pays) and a trace header (tracing "
             "on). Lambda bills INIT, so the ratio that counts is the last column. "
             f"Measured {r['machine']['date']} at {r['machine']['commit']}.", "",
             "| handler | import (ms) | + first call (ms) | bare: import boto3 (ms) "
             "| bare: + same calls (ms) | calls | ratio |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, h in r["handlers"].items():
        lines.append(f"| {name} | {h['import_ms']} | {h['first_call_ms']} | "
                     f"{h['bare_import_ms']} | {h['bare_first_call_ms']} | {h['calls']} | "
                     f"{h['first_call_ratio']}x |")
    worst = max(h["first_call_ratio"] for h in r["handlers"].values())
    lines += ["", f"Target: import + first call at most {r['target_ratio']}x the bare "
              f"handler's; worst measured {worst}x. What keeps it there: the handler modules "
              "import nothing at module level but the Powertools decorators; the Tracer is "
              "made on the first call and patches botocore only; the boundary models build "
              "their validators on first use (pydantic's `defer_build`). A ratio below 1 means "
              "the bare replay of the very same calls took longer than fanout's whole first "
              "call; those handlers' calls are many and their times vary from run to run."]
    return lines


def _limits_lines(local: dict[str, Any]) -> list[str]:
    """The run's largest payload and history against Step Functions' limits."""
    limits = local.get("limits")
    if not limits:
        return []
    payload, history = limits["payload_bytes"], limits["history_events"]
    cap = limits["payload_limit_bytes"]
    return [f"- Step Functions limits, as the local mode enforces them: largest state payload "
            f"**{payload:,} bytes** ({limits['payload_where']}) of {cap:,}"
            f" ({payload / cap:.1%}); longest execution history "
            f"**{history:,} events** of {limits['history_limit_events']:,}. The map's results "
            "went to S3 (ResultWriter): the payload does not grow with the item count."]


def _scale(r: dict[str, Any]) -> list[str]:
    local, expand = r["local_run"], r["expand"]
    return ["## Scale", "",
            f"Command: `.venv/bin/python {r['command']}`.", "",
            f"- {local['items']:,} items through the local mode (concurrency "
            f"{local['concurrency']}): {local['status']}, {local['succeeded']:,} succeeded, "
            f"at most {local['most_tasks_per_item']} task per item, **{local['seconds']} s**, "
            f"peak RSS **{local['peak_rss_mb']:.0f} MB**.",
            *_limits_lines(local),
            f"- Expand (the real runtime, manifest to S3 by multipart upload) on a "
            f"{expand['items']:,}-item matrix: **{expand['seconds']:.1f} s**, peak RSS "
            f"**{expand['peak_rss_mb']:.0f} MB** of a {expand['budget_mb']} MB Lambda, "
            f"manifest {expand['manifest_bytes'] / 1e6:.1f} MB. The process also holds "
            "moto's S3, with the manifest's parts, in memory: a Lambda would not.",
            *_items_from_lines(r),
            f"- met: {r['met']}"]


def _items_from_lines(r: dict[str, Any]) -> list[str]:
    streamed = r.get("items_from")
    if not streamed:
        return []
    return [f"- Expand on a {streamed['rows']:,}-row `items_from` object, streamed from S3 "
            f"({f['format']}, {f['object_bytes'] / 1e6:.1f} MB): **{f['seconds']:.0f} s**, "
            f"peak RSS **{f['peak_rss_mb']:.0f} MB** of {streamed['budget_mb']} MB (S3 "
            "outside the process, as outside a Lambda)."
            for f in streamed["formats"]]


def _local_overhead(r: dict[str, Any]) -> list[str]:
    runs = r.get("runs") or {str(r["items"]): r}  # (results written before 5,000 items)
    lines = ["## Local mode: orchestration overhead per item", "",
             f"Command: `.venv/bin/python {r.get('command', 'bench/local_overhead.py')}`. "
             f"Items of a no-op command at concurrency {r['concurrency']}; the ideal is the "
             "no-op's own time spread over the concurrency; the overhead per item is the "
             "execution's wall time less the ideal, over the items.", "",
             "| items | no-op alone (ms per process) | execution (s) | ideal (s) | "
             "**overhead (ms per item)** | target | CPU (ms per item) | run | stand-up (s) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for n, x in runs.items():
        lines.append(
            f"| {int(n):,} | {r['noop_process_ms']} | {x['execution_seconds']} | "
            f"{x['ideal_seconds']} | **{x['overhead_ms_per_item']}** | <= "
            f"{x['target_ms_per_item']:g} | {x.get('execution_cpu_ms_per_item', 'n/a')} | "
            f"{x['run_status']}, {x['succeeded']} succeeded | {x['stand_up_seconds']} |")
    if r.get("load_average"):
        lines += ["", f"Load average when measured: {', '.join(map(str, r['load_average']))} "
                  "(1, 5, 15 minutes) on this machine's cores."]
    profile = HERE / "local_overhead_profile.md"
    if profile.exists():
        lines += ["", profile.read_text().rstrip()]
    return lines


def _figures() -> list[str]:
    """Every documented figure (docs/benchmarks.json), with the commit and date measured."""
    from _figures import documented

    figures = documented()
    if not figures:
        return []
    lines = ["## Documented figures", "",
             "One machine-readable place, `docs/benchmarks.json`: each benchmark writes its "
             "figures there with the commit and date it measured them at, and `make test` "
             "(tests/bench/test_figures.py) re-runs the cheap ones (the `--quick` commands) "
             "and fails when one is more than 2x worse than documented here or misses its "
             "target. Times that the other test worker's load would swing (the local overhead "
             "at 200 items, the dashboard's pages) are checked as ratios to a fixed "
             "pure-Python workload timed beside them (`*_per_reference`), so a loaded "
             "machine slows both sides.", "",
             "| figure | value | target | measured at | date | command |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, f in figures.items():
        sign = "<=" if f["better"] == "lower" else ">="
        target = "" if f.get("target") is None else f"{sign} {f['target']:g} {f['unit']}"
        lines.append(f"| {name}: {f['what']} | {f['value']:g} {f['unit']} | {target} | "
                     f"{f['commit']} | {f['date']} | `{f['command']}` |")
    return [*lines, ""]


def _ui(r: dict[str, Any]) -> list[str]:
    grid = r.get("grid_ms")
    return ["## Dashboard", "",
            f"Command: `.venv/bin/python {r['command']}`. A records folder in the format "
            f"`fanout local` writes: one run of {r['items']:,} items (mixed states, some "
            f"retried) and {r['runs']:,} runs of 10 items, served by `fanout ui`'s app on "
            "loopback. Server time is request sent -> last byte received (first request, "
            "when the run's records are read, then the median of 10); the grid time is "
            "Chromium's navigation start -> every cell in the DOM and painted (median of 5 "
            "loads). Load average while measured: "
            f"{', '.join(str(x) for x in r.get('load_average', []))} on "
            f"{r['machine'].get('cpus')} cores.", "",
            "| figure | first | median | target |", "| --- | --- | --- | --- |",
            f"| run page, {r['items']:,} items, server | {r['run_page']['first_ms']} ms | "
            f"**{r['run_page']['median_ms']} ms** | <= {r['targets']['run_page_ms']:g} ms |",
            f"| grid visible in Chromium | {grid['first_ms'] if grid else '-'} ms | "
            f"**{grid['median_ms'] if grid else '-'} ms** | <= {r['targets']['grid_ms']:g} ms |",
            f"| runs page over {r['runs']:,} runs, server | {r['runs_page']['first_ms']} ms | "
            f"**{r['runs_page']['median_ms']} ms** | <= {r['targets']['runs_page_ms']:g} ms |",
            "", f"Met: {r['met']}."]


def _close(r: dict[str, Any]) -> list[str]:
    lines = ["## Closing a run: Finalize page by page", "",
             f"Command: `.venv/bin/python {r['command']}`. The emulated store in process "
             "(moto's DynamoDB and S3 with the local mode's patches and direct clients); the "
             "run's records written straight into the table, then Finalize called as the "
             "state machine's loop calls it until done, each invocation starting pages for "
             f"{r['budget_seconds']:g} s (on AWS: up to {r['lambda_budget_seconds']:g} s). "
             "`fails_early`: 50 items ran (10 failed), every other item never launched and "
             "is written from the manifest; `all_but_one`: every item succeeded (item and "
             "attempt records) but the last, whose task still runs.", "",
             "| run | items | wall s | s per 1,000 items | invocations | invocations per "
             "1,000 items | pages | s per page | closed right |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, x in r["runs"].items():
        lines.append(f"| {name.split('/')[0]} | {x['items']:,} | {x['seconds']} | "
                     f"{x['seconds_per_1000_items']} | {x['invocations']} | "
                     f"{x['invocations_per_1000_items']} | {x['pages']} | "
                     f"{x['seconds_per_page']} | {x['closed_right']} |")
    lines += ["", "Extrapolated to 1,000,000 items from the largest run's time per page "
              "(not measured; moto's Query also filters the run's whole partition, so its "
              "time per page grows with the run where DynamoDB's does not):", "",
              "| run | pages | seconds | Finalize invocations at "
              f"{r['lambda_budget_seconds']:g} s | transitions | history events "
              "(of 25,000) |", "| --- | --- | --- | --- | --- | --- |"]
    for name, p in r["extrapolated"].items():
        lines.append(f"| {name} | {p['pages']:,} | {p['seconds']:,} | "
                     f"{p['invocations_at_60s']:,} | {p['transitions']:,} | "
                     f"{p['history_events']:,} ({p['history_share']:.1%}) |")
    lines += ["", f"Each turn of the loop is {r['transitions_per_turn']} transitions "
              f"(Finalize, Closed?) and {r['history_events_per_turn']} history events "
              "(docs/decisions/0009). Wall times are moto's on a shared 2-core machine: "
              "a DynamoDB call there costs milliseconds of Python."]
    return lines


def _generic(name: str, r: dict[str, Any]) -> list[str]:
    body = {k: v for k, v in r.items() if k not in ("machine",)}
    return [f"## {name}", "", "```json", json.dumps(body, indent=2)[:4000], "```"]


def _targets(results: dict[str, dict[str, Any]]) -> list[str]:
    """One row per target of the issue: the figure measured and whether it is met."""
    rows: list[tuple[str, str, str, bool]] = []
    if "expand" in results and "ratio" in results["expand"]:
        r = results["expand"]
        rows += [("expansion speed vs the straightforward loop", ">= 2x", f"{r['ratio']}x",
                  r["ratio"] >= 2),
                 ("expansion peak RSS, 1M items", "< 150 MB",
                  f"{r['fanout']['peak_rss_mb']} MB", r["fanout"]["peak_rss_mb"] < 150)]
    if "coldstart" in results and "handlers" in results["coldstart"]:
        worst = max(h["first_call_ratio"] for h in results["coldstart"]["handlers"].values())
        rows.append(("handler import + first call vs a bare boto3 handler (worst)", "<= 1.5x",
                     f"{worst}x", worst <= 1.5))
    if "cost" in results and "runs" in results["cost"]:
        happy = results["cost"]["runs"]["happy"]
        retry = results["cost"]["runs"]["retry_10pct"]
        rows += [("billed transitions per item, happy path", "<= 2",
                  str(happy["per_item"]["transitions"]), happy["per_item"]["transitions"] <= 2),
                 ("control plane $ per 1,000 items (happy / 10% retried)", "<= $0.06",
                  f"${happy['usd_per_1000_total']} / ${retry['usd_per_1000_total']}",
                  happy["usd_per_1000_total"] <= 0.06)]
    if "launch" in results and "runs" in results["launch"]:
        for n, x in results["launch"]["runs"].items():
            t = results["launch"]["targets"]
            rows += [
                (f"launch storm {n} items: throttled RunTask / launches", "<= 2%",
                 "n/a" if x["throttled_share"] is None else f"{x['throttled_share']:.1%}",
                 x["met"]["throttled_share"]),
                (f"launch storm {n} items: transitions per item", f"<= {t['transitions_per_item']}",
                 str(x["transitions_per_item"]), x["met"]["transitions_per_item"]),
                (f"launch storm {n} items: span vs ideal", f"<= {t['span_ratio']}x",
                 f"{x['ratio']}x", x["met"]["span_ratio"]),
                (f"launch storm {n} items: items lost", "0", str(x["lost"]), x["met"]["lost"]),
                (f"launch storm {n} items: $ per 1,000 items", f"<= ${t['usd_per_1000']}",
                 f"${x['usd_per_1000']}", x["met"]["usd_per_1000"]),
            ]
    if "local_overhead" in results:
        r = results["local_overhead"]
        for n, x in (r.get("runs") or {str(r.get("items")): r}).items():
            if "overhead_ms_per_item" in x:
                rows.append((f"local mode overhead per item, {int(n):,} items",
                             f"<= {x['target_ms_per_item']:g} ms",
                             f"{x['overhead_ms_per_item']} ms", bool(x["met"])))
    if "scale" in results and "local_run" in results["scale"]:
        r = results["scale"]
        rows += [(f"{r['local_run']['items']:,}-item local run to the end", "completes",
                  f"{r['local_run']['seconds']:.0f} s, {r['local_run']['peak_rss_mb']:.0f} MB",
                  r["met"]["local_run_complete"]),
                 (f"Expand on {r['expand']['items']:,} items", "within 1,024 MB",
                  f"{r['expand']['peak_rss_mb']:.0f} MB", r["met"]["expand_within_budget"])]
        if r.get("items_from"):
            peak = max(f["peak_rss_mb"] for f in r["items_from"]["formats"])
            rows.append((f"Expand on a {r['items_from']['rows']:,}-row items_from object "
                         "(JSON Lines, CSV)", f"within {r['items_from']['budget_mb']} MB",
                         f"{peak:.0f} MB", r["met"]["items_from_streamed"]))
        if r["local_run"].get("limits"):
            limits = r["local_run"]["limits"]
            rows.append((f"{r['local_run']['items']:,}-item run within Step Functions' limits",
                         f"payload <= {limits['payload_limit_bytes']:,} B, history < "
                         f"{limits['history_limit_events']:,}",
                         f"{limits['payload_bytes']:,} B, {limits['history_events']:,} events",
                         r["met"]["local_run_within_step_functions_limits"]))
    if "ui" in results and "run_page" in results["ui"]:
        r = results["ui"]
        grid = r.get("grid_ms") or {}
        rows += [(f"dashboard run page, {r['items']:,} items (server, median)", "<= 300 ms",
                  f"{r['run_page']['median_ms']} ms", bool(r["met"]["run_page"])),
                 ("dashboard grid visible in Chromium (median)", "<= 1.5 s",
                  f"{grid.get('median_ms', '-')} ms", bool(r["met"]["grid"])),
                 (f"dashboard runs page, {r['runs']:,} runs (server, median)", "<= 300 ms",
                  f"{r['runs_page']['median_ms']} ms", bool(r["met"]["runs_page"]))]
    if "close" in results and "extrapolated" in results["close"]:
        r = results["close"]
        rows += [(f"{name} run of {x['items']:,} items closes", "every item terminal",
                  f"{x['invocations']} invocations, {x['seconds']} s", bool(x["closed_right"]))
                 for name, x in ((n.split("/")[0], x) for n, x in r["runs"].items())]
        rows += [(f"closing a {p['items']:,}-item run ({name}, extrapolated): history events",
                  "< 25,000", f"{p['history_events']:,}", p["history_share"] < 1)
                 for name, p in r["extrapolated"].items()]
    if not rows:
        return []
    lines = ["## Targets", "", "| target | asked | measured | met |", "| --- | --- | --- | --- |"]
    lines += [f"| {what} | {asked} | {got} | {'yes' if ok else '**no**'} |"
              for what, asked, got, ok in rows]
    return [*lines, ""]


#: How to run the real-AWS load test: a page of its own, not a measured figure (no result
#: of it is in bench/out: it runs against the user's account).
AWS_LOAD = """## On real AWS: `bench/aws_load.py` (run by hand)

Everything above runs on emulation, which serializes every request: no transaction ever
conflicts, no key is throttled. `bench/aws_load.py` measures a deployed stack instead. It
deploys nothing and is in neither `make test` nor `make bench` (it needs credentials and
spends money). Its report logic is tested against a fake stack on moto's server
(`tests/aws/test_aws_load.py`).

1. Add a no-op job to your deployment config (`cdk.json`, `fanout.jobs`) and deploy:

   ```json
   "noop": {"cpu": 256, "memory": 512, "architecture": "ARM64", "image_tag": "latest",
            "command": ["true"],
            "defaults": {"retry": {"max_attempts": 1}, "timeout_seconds": 600,
                         "max_concurrency": 1000, "capacity": "FARGATE"}}
   ```

   then push any small ARM64 image that has `true` (busybox) to the job's repository
   (`cdk deploy` prints `PushNoop`: the `docker tag`/`docker push` commands).
2. Check the account's Fargate vCPU quota (Service Quotas, "Fargate On-Demand vCPU
   resource count"): `--concurrency C` at 0.25 vCPU a task needs C/4 vCPUs. Over it, items
   wait (`WAITING: vCPU quota`), they do not fail.
3. Run it:

   ```sh
   .venv/bin/python bench/aws_load.py --stack Fanout --region eu-west-1 \\
       --job noop --items 100000 --concurrency 1000 --out load.json
   .venv/bin/python bench/aws_load.py --stack Fanout --region eu-west-1 --report RUN_ID
   ```

   It starts one run of N items (`params.n`, one attempt each), polls the run record until
   the run ends, waits `--settle` seconds (300) for CloudWatch, then prints JSON:
   `items_lost` (items not in a terminal state: must be 0), `items_run_twice` (items that
   started more than one task: the no-op never fails, so must be 0) and
   `items_settled_lost`; `launches` (tasks started, span, per second, peak over 10 s);
   `launch_throttles` (the dispatcher's `Fanout/LaunchThrottled` sum, attempts that waited
   in the queue); `dynamodb` (`TransactionConflict` and `ThrottledRequests` of the records
   table over every operation); `reconcile` (its function's `Duration`: invocations,
   maximum, average ms); `cost` (the run's estimate, as `fanout status` gives it, and
   `usd_per_1000_items`). It exits 1 when an item was lost or run twice.

What it costs (list prices of `fanout/cost.py`, us-east-1, ARM64): each no-op task is
billed Fargate's one-minute minimum, 0.25 vCPU and 0.5 GB: $0.000165 a task, $0.165 per
1,000 items; the control plane adds $0.04-0.045 per 1,000 (the usage model and the launch
storm above):
**about $0.21 per 1,000 items, $21 for 100,000**, plus CloudWatch Logs ingestion of the
functions' logs and a few CloudWatch API requests. At Fargate's sustained 20 launches/s,
100,000 items take at least 84 minutes.
"""


def _packing(r: dict[str, Any]) -> list[str]:
    """Many items per task: the runner's measured cost per item and the million-item model."""
    a, one, auto = r["assumptions"], r["k1"], r["auto_model"]
    lines = ["## Packing: 1,000,000 five-second items, one per task and packed", "",
             f"Command: `.venv/bin/python {r['command']}`. A model, not a run: "
             f"{a['items']:,} items of {a['item_seconds']:g} s, {a['max_concurrency']:,} at "
             f"once, {a['bucket']}; a task starts when a launch permit and a task slot are "
             f"both free and runs {a['startup_seconds']:g} s of start (assumed: image pull "
             "and provisioning, billed) plus its items one after another, each with the "
             "runner's own time per item measured below. Compute priced by fanout/cost.py "
             f"({a['task']}, per second, one-minute minimum); control plane by its usage "
             "model, transitions and Lambda per task, DynamoDB per item.", "",
             f"`\"auto\"` chose K = {r['auto']['items_per_task']}: {r['auto']['why']}.", "",
             "| figure | K = 1 | auto |", "| --- | --- | --- |"]
    for key, label in (("items_per_task", "items per task"), ("tasks", "tasks"),
                       ("task_seconds", "seconds per task"),
                       ("launch_span_seconds", "launch span (s)"),
                       ("hours", "time to finish (h)"), ("transitions", "state transitions"),
                       ("compute_usd", "compute $"), ("control_plane_usd", "control plane $"),
                       ("total_usd", "**total $**"), ("usd_per_1000_items", "$ per 1,000 items")):
        lines.append(f"| {label} | {one[key]:,} | {auto[key]:,} |")
    runner = r["runner"]
    lines += ["", f"Targets: under {r['targets']['hours']:g} h at the default bucket, and under "
              f"{r['targets']['cost_share']:.0%} of K = 1's cost. Auto: {auto['hours']} h, "
              f"{r['cost_share']:.1%} of the cost. Met: {r['met']}.", "",
              f"Measured: the batch runner (fanout/local/packed.py) ran {runner['items']} "
              f"no-op items (`true`) in one task in {runner['wall_seconds']} s, "
              f"{runner['seconds_per_item'] * 1000:.1f} ms per item (a loaded 2-core "
              "machine).", "",
              "The same short items through `fanout local` at K = 1, 10 and 50: the next "
              "section (`bench/packing.py --local-only`)."]
    if r.get("local"):
        lines += ["", *_local_table(r["local"])]
    return lines


def _packing_local(r: dict[str, Any]) -> list[str]:
    """The same short items run by ``fanout local`` at several K, side by side."""
    local, made = r["local"], r["machine"]
    return [f"## Packing locally: {local['items']:,} short items at K = "
            + ", ".join(str(run["items_per_task"]) for run in local["runs"]), "",
            f"Command: `.venv/bin/python {r['command']}` (at {made['commit']}, "
            f"{made['date']}, {made['cpus']} CPUs). The bench deployment's `noop` item (a "
            f"shell that exits 0), {local['max_concurrency']} at once, each K in its own "
            "run of one invocation, after one warm-up run that pays the synthesis.", "",
            *_local_table(local)]


def _local_table(local: dict[str, Any]) -> list[str]:
    runs = local["runs"]
    lines = ["| figure | " + " | ".join(f"K = {run['items_per_task']}" for run in runs) + " |",
             "| --- |" + " --- |" * len(runs)]
    for key, label in (("status", "run"), ("tasks", "tasks launched"),
                       ("launch_span_seconds", "launch span (s)"),
                       ("wall_seconds", "wall time (s)"), ("transitions", "state transitions"),
                       ("transitions_per_item", "transitions per item"),
                       ("compute_usd_per_1000_items", "compute $ per 1,000 items"),
                       ("usd_per_1000_items", "**total $ per 1,000 items**")):
        lines.append(f"| {label} | " + " | ".join(f"{run[key]:,}" if not isinstance(
            run[key], str) else run[key] for run in runs) + " |")
    return lines


RENDERERS = {"expand": _expand, "coldstart": _coldstart, "scale": _scale,
             "local_overhead": _local_overhead, "ui": _ui, "close": _close,
             "packing": _packing, "packing_local": _packing_local}


def render(results: dict[str, dict[str, Any]]) -> str:
    lines = ["# Benchmarks", "",
             "Written by bench/report.py from bench/out/*.json; `make bench` runs every "
             "benchmark, then this report. Every figure below comes from the run named with "
             "it, at the commit it names.", ""]
    first = next((r["machine"] for r in results.values()
                  if isinstance(r.get("machine"), dict)), None)
    if first:
        lines += [f"Machine: {first.get('platform')}, {first.get('cpus')} cores, Python "
                  f"{first.get('python')}. This machine is shared: figures vary with its load; "
                  "ratios are measured side by side in one run.", ""]
    lines += _targets(results)
    lines += _figures()
    for name, r in results.items():
        if name.endswith("_quick"):
            continue  # the quick runs' figures are in the documented figures' table
        if name == "cost" and "runs" in r:
            lines += _cost(r)
        elif name == "launch" and "runs" in r:
            lines += _launch(r, results.get("launch-before"))
        elif name == "launch-before":
            continue
        elif name in RENDERERS and isinstance(r.get("machine"), dict):
            lines += RENDERERS[name](r)
        else:
            lines += _generic(name, r)
        machine = r.get("machine")
        if isinstance(machine, dict):
            lines += ["", f"_Measured {machine.get('date')} at commit {machine.get('commit')}"
                      + (" (quick mode)._" if r.get("quick") else "._")]
        lines.append("")
    lines.append(AWS_LOAD)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    out = Path(args[0]) if args else Path(os.environ.get("FANOUT_BENCH_OUT", HERE / "out"))
    doc = Path(args[1]) if len(args) > 1 else DOC
    doc.write_text(render(load(out)))
    print(f"wrote {doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
