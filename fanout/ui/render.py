"""Pieces of the pages that are built in Python: the item grid, the preview (the timeline is
:mod:`fanout.ui.timeline`'s).

The grid and the timeline are built as strings with every value escaped here, not in a
template loop: the run page of a 10,000-item run must render in well under 300 ms.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from fanout.ui.source import ITEM_STATES, parse_time

#: Environment names whose values are never shown (a spec may carry a credential).
SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSW|CREDENTIAL|PRIVATE|API_?KEY|ACCESS_?KEY|SESSION",
                         re.IGNORECASE)
MASK = "•••••• (hidden)"


# --- small filters -------------------------------------------------------------------------


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def when(text: str | None) -> str:
    moment = parse_time(text)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "—"


def params_text(params: Mapping[str, Any] | None) -> str:
    if not params:
        return "—"
    return ", ".join(f"{k}={_scalar(v)}" for k, v in params.items())


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def usd(cost: Mapping[str, Any] | None) -> str:
    if not cost or cost.get("total_usd") is None:
        return "—"
    return f"${float(cost['total_usd']):.4f}"


def masked(name: str, value: Any) -> str:
    return MASK if SECRET_NAME.search(name) else str(value)


def run_matches(run: Mapping[str, Any], query: str) -> bool:
    """Whether a run's id, job or spec (so its parameter values) mentions ``query``."""
    needle = query.lower()
    if needle in str(run["run_id"]).lower() or needle in str(run.get("job", "")).lower():
        return True
    return needle in json.dumps(run.get("spec") or {}).lower()


def state_bar(counts: Mapping[str, int], total: int) -> Markup:
    """A stacked bar of item states (the widths are percentages of ``total``)."""
    if total <= 0:
        return Markup('<span class="bar empty"></span>')
    parts = []
    for state in ITEM_STATES:
        n = int(counts.get(state, 0))
        if n:
            parts.append(f'<i class="s-{state}" style="width:{100 * n / total:.3f}%" '
                         f'title="{n} {state.lower()}"></i>')
    return Markup(f'<span class="bar" role="img" aria-label="item states">{"".join(parts)}'
                  "</span>")


# --- the item grid -------------------------------------------------------------------------


def filter_items(items: Sequence[Mapping[str, Any]], status: str | None,
                 param: str) -> list[Mapping[str, Any]]:
    """Items in ``status`` whose params match ``param`` (``name=value`` or a bare value)."""
    shown: Iterable[Mapping[str, Any]] = items
    if status:
        shown = [i for i in shown if i["status"] == status]
    if param:
        name, sep, value = param.partition("=")
        if sep:
            name, value = name.strip(), value.strip()
            shown = [i for i in shown
                     if name in i["params"] and _scalar(i["params"][name]) == value]
        else:
            needle = param.lower()
            shown = [i for i in shown
                     if any(needle == _scalar(v).lower() for v in i["params"].values())]
    return list(shown)


def grid(run_id: str, items: Sequence[Mapping[str, Any]]) -> Markup:
    """One cell per item, coloured by state; its title shows the params.

    A cell is an ``<a>`` without ``href`` (a click opens the item through one listener on
    the grid): 10,000 cells stay under a megabyte and lay out fast.
    """
    cells = [
        f'<a data-index="{int(i["index"])}" data-status="{escape(str(i["status"]))}" '
        f'title="#{int(i["index"])} {escape(params_text(i["params"]))}"></a>'
        for i in items
    ]
    return Markup("".join(cells))


# --- the start page ------------------------------------------------------------------------


def example_spec(job: str, config: Any) -> dict[str, Any]:
    """A spec to start editing from: the job's placeholders as one-value axes."""
    names: list[str] = []
    if config is not None:
        for part in [*config.command, *config.environment.values()]:
            for name in re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", str(part)):
                if name not in ("index", "run_id") and name not in names:
                    names.append(name)
    params: dict[str, Any] = {n: ["value"] for n in names}
    if "year" in params:
        params["year"] = {"range": {"start": 1999, "stop": 2020}}
    return {"job": job, "params": params or {"n": {"range": {"start": 0, "stop": 3}}}}


def preview(text: str, config_path: Path, first: int) -> dict[str, Any]:
    """What ``fanout expand`` says of a spec: its count, its first items, or every problem."""
    from fanout.config import load_config_file
    from fanout.errors import FanoutInputError
    from fanout.spec.plan import plan_run
    from fanout.spec.validate import parse_spec

    def problems(exc: FanoutInputError) -> dict[str, Any]:
        return {"ok": False, "count": None, "items": [], "note": None,
                "problems": [{"field": p.field, "message": p.message} for p in exc.problems]}

    try:
        raw = json.loads(text)
    except ValueError as exc:
        return {"ok": False, "count": None, "items": [], "note": None,
                "problems": [{"field": "spec", "message": f"not JSON: {exc}"}]}
    try:
        config = load_config_file(config_path)
        spec = parse_spec(raw, config)
        if spec.items_from is not None:
            return {"ok": True, "count": None, "items": [], "problems": [],
                    "note": "the items are read from items_from when the run starts"}
        plan = plan_run(spec, config, run_id="preview")
    except FanoutInputError as exc:
        return problems(exc)
    items: list[dict[str, Any]] = []
    if first:
        for item in plan.items():
            items.append(item)
            if len(items) >= first:
                break
    return {"ok": True, "count": plan.count, "items": items, "problems": [], "note": None}


# --- the pipeline graph --------------------------------------------------------------------

#: A step's box, the gaps between boxes and around them (px).
NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 210, 66, 64, 18, 10
#: Characters of a step's name drawn in its box (the whole name is in its tooltip).
NAME_SHOWN = 24


def step_columns(needs: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """The steps by dependency wave, as :func:`fanout.pipelines.plan.waves` orders them,
    from a record rather than a checked spec: a need on a step the record lacks, or one
    that would close a loop, is left out (a checked spec has neither)."""
    depth: dict[str, int] = {}

    def deep(step: str, path: frozenset[str]) -> int:
        if step not in depth:
            known = [n for n in needs.get(step, ()) if n in needs and n not in path]
            depth[step] = 1 + max((deep(n, path | {step}) for n in known), default=-1)
        return depth[step]

    columns: list[list[str]] = []
    for step in needs:
        column = deep(step, frozenset())
        columns += [[] for _ in range(column + 1 - len(columns))]
        columns[column].append(step)
    return columns


def pipeline_graph(steps: Mapping[str, Mapping[str, Any]]) -> Markup:
    """The steps as an SVG graph: one box per step in its wave's column, coloured by its
    status and saying it in words, linked to its run (``link``), an arrow from each step it
    needs. Every value is escaped here."""
    needs = {name: [str(n) for n in step.get("needs") or [] if str(n) in steps]
             for name, step in steps.items()}
    columns = step_columns(needs)
    where: dict[str, tuple[int, int]] = {}
    for c, column in enumerate(columns):
        for r, name in enumerate(column):
            where[name] = (PAD + c * (NODE_W + GAP_X), PAD + r * (NODE_H + GAP_Y))
    rows = max((len(c) for c in columns), default=0)
    width = 2 * PAD + len(columns) * NODE_W + max(len(columns) - 1, 0) * GAP_X
    height = 2 * PAD + rows * NODE_H + max(rows - 1, 0) * GAP_Y
    edges = []
    for name, wanted in needs.items():
        x2, y2 = where[name][0], where[name][1] + NODE_H // 2
        for need in wanted:
            x1, y1 = where[need][0] + NODE_W, where[need][1] + NODE_H // 2
            bend = (x2 - x1) / 2 if x2 > x1 else GAP_X
            held = steps[need].get("status") not in ("SUCCEEDED", "RUNNING", "PENDING")
            edges.append(f'<path class="edge{" held" if held else ""}" '
                         f'data-from="{escape(need)}" data-to="{escape(name)}" '
                         f'd="M{x1} {y1} C{x1 + bend} {y1} {x2 - bend} {y2} {x2} {y2}" '
                         'marker-end="url(#arrow)"/>')
    nodes = [_step_box(name, steps[name], *where[name]) for name in steps]
    return Markup(
        f'<svg class="pipeline-graph" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="group" '
        'aria-label="the pipeline\'s steps, each in the column of its wave">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z"/></marker>'
        f'</defs>{"".join(edges)}{"".join(nodes)}</svg>')


def _step_box(name: str, step: Mapping[str, Any], x: int, y: int) -> str:
    status = str(step.get("status") or "PENDING")
    state = re.sub(r"[^A-Z_]", "", status) or "UNKNOWN"
    shown = name if len(name) <= NAME_SHOWN else name[:NAME_SHOWN - 1] + "…"
    detail = str(step.get("progress") or "")
    tip = f"{name}: {status}" + (f": {step['reason']}" if step.get("reason") else "")
    body = (f'<title>{escape(tip)}</title>'
            f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
            f'<text class="name" x="{x + 10}" y="{y + 20}">{escape(shown)}</text>'
            f'<text class="state" x="{x + 10}" y="{y + 38}">{escape(status)}</text>'
            + (f'<text class="progress" x="{x + 10}" y="{y + 56}">{escape(detail)}</text>'
               if detail else ""))
    link = step.get("link")
    if link:
        body = f'<a href="/runs/{escape(quote(str(link), safe=""))}">{body}</a>'
    return (f'<g class="step s-{state}" data-step="{escape(name)}" '
            f'data-status="{escape(status)}">{body}</g>')
