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
