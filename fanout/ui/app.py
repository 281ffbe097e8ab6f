"""The dashboard's web app: server-rendered pages over a :class:`DashboardSource`, and its JSON.

Reading routes are plain functions, which Starlette runs in its thread pool: a slow read
(a large run's records parsed for the first time) never holds up the event loop.

Routes (stable hooks for tests and scripts): ``/`` (runs), ``/runs/{run_id}`` (run),
``/runs/{run_id}/items/{index}`` (item), ``/runs/{run_id}/tasks/{task_key}`` (a
packed task's items: fanout.ui.tasks), ``/new`` (start a run), ``/pipelines`` and
``/pipelines/{pipeline_run_id}`` (pipeline runs, when the source lists them); the same data
as JSON under ``/api/...`` in the CLI's ``--json`` shapes. Every POST checks the CSRF token.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from fanout.errors import FanoutInputError
from fanout.outputs import size_text
from fanout.ui import render, tasks, timeline
from fanout.ui.security import CSRF_FIELD, CSRF_HEADER, Guard, GuardMiddleware
from fanout.ui.source import (
    ITEM_STATES,
    RUN_STATES,
    DashboardSource,
    PipelineRunsSource,
    PipelineRunView,
    SourceError,
    empty_counts,
)

HERE = Path(__file__).resolve().parent
#: Runs listed on the runs page before "show all".
RUNS_SHOWN = 200
#: Items listed by the start page's preview.
PREVIEW_ITEMS = 20
#: Largest POST body read (a spec of explicit items can be big, not unbounded).
MAX_BODY = 8 * 1024 * 1024
#: What the pipeline pages say where pipeline runs are not read (a stack deployed before
#: pipelines: its dashboard function is given no pipeline state machine).
NOT_LISTED = ("Pipeline runs are not listed here: this deployment has no pipeline state "
              "machine (deploy this version of fanout to add it)")


def templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["duration"] = render.duration
    env.filters["when"] = render.when
    env.filters["params"] = render.params_text
    env.filters["usd"] = render.usd
    env.filters["masked"] = render.masked
    env.filters["size"] = size_text
    return env


class Dashboard:
    """The routes' shared state: the source of runs, the guard, the templates."""

    def __init__(self, source: DashboardSource, guard: Guard, config_path: Path) -> None:
        self.source = source
        self.guard = guard
        self.config_path = config_path
        self.env = templates()
        #: Where pipeline runs are read; None: this source lists none (a stack's, today).
        self.pipelines: PipelineRunsSource | None = getattr(source, "pipelines", None)
        self._timelines: dict[tuple[str, str | None], str] = {}

    # helpers ----------------------------------------------------------------------------

    def page(self, name: str, request: Request, code: int = 200, **context: Any) -> Response:
        html = self.env.get_template(name).render(
            csrf_token=self.guard.csrf_for(request.scope), source_kind=self.source.kind,
            user=request.scope.get("fanout.user"),
            path=request.url.path, item_states=ITEM_STATES, run_states=RUN_STATES,
            pipelines_listed=self.pipelines is not None, **context,
        )
        return HTMLResponse(html, status_code=code)

    async def posted(self, request: Request) -> dict[str, Any]:
        """The POST's fields (form or JSON) once its CSRF token is checked; else 403."""
        body = await request.body()
        if len(body) > MAX_BODY:
            raise HTTPException(413, "request too large")
        fields: dict[str, Any] = {}
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        if kind == "application/json" and body:
            try:
                loaded = json.loads(body)
            except ValueError:
                raise HTTPException(400, "the body is not JSON") from None
            fields = loaded if isinstance(loaded, dict) else {"value": loaded}
        elif kind == "application/x-www-form-urlencoded":
            fields = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"),
                                                     keep_blank_values=True).items()}
        token = request.headers.get(CSRF_HEADER) or fields.pop(CSRF_FIELD, None)
        if not self.guard.csrf_ok_for(request.scope, token if isinstance(token, str) else None):
            raise HTTPException(403, "missing or wrong CSRF token")
        return fields

    def run_or_404(self, run_id: str) -> dict[str, Any]:
        run = self.source.get_run(run_id)
        if run is None:
            raise HTTPException(404, f"no run {run_id}")
        return run

    def jobs(self) -> dict[str, Any]:
        from fanout.config import load_config_file

        try:
            return dict(load_config_file(self.config_path).jobs)
        except (FanoutInputError, OSError):
            return {}

    # pages ------------------------------------------------------------------------------

    def runs_page(self, request: Request) -> Response:
        job = request.query_params.get("job") or None
        status = request.query_params.get("status") or None
        query = (request.query_params.get("q") or "").strip()
        shown = _int_param(request, "limit", RUNS_SHOWN)
        runs = self.source.list_runs(job=job, status=status, limit=100_000)
        jobs = sorted({str(r["job"]) for r in runs} | set(self.jobs()))
        if query:
            runs = [r for r in runs if render.run_matches(r, query)]
        live = any(r["status"] == "RUNNING" for r in runs[:shown])
        return self.page("runs.html", request, runs=[_shown(r) for r in runs[:shown]],
                         matched=len(runs), jobs=jobs, job=job, status=status, q=query,
                         live=live, bar=render.state_bar,
                         more_url=f"?{_with(request, limit=str(len(runs)))}")

    def run_page(self, request: Request) -> Response:
        run = self.run_or_404(request.path_params["run_id"])
        status = request.query_params.get("status") or None
        param = (request.query_params.get("param") or "").strip()
        items = self.source.list_items(run["run_id"])
        run = _shown(run, len(items))
        shown = render.filter_items(items, status, param)
        grid = render.grid(run["run_id"], shown)
        packing = tasks.packing(run, tasks.of_run(self.source, run["run_id"]))
        return self.page("run.html", request, run=run, grid=grid, shown=len(shown), packing=packing,
                         total_items=len(items), status=status, param=param,
                         live=run["status"] == "RUNNING", bar=render.state_bar)

    def timeline(self, request: Request) -> Response:
        run = self.run_or_404(request.path_params["run_id"])
        key = (run["run_id"], run["finished_at"])
        svg = self._timelines.get(key) if run["status"] != "RUNNING" else None
        if svg is None:
            details = [self.source.get_item(run["run_id"], int(i["index"]))
                       for i in self.source.list_items(run["run_id"]) if i["attempt_count"]]
            svg = timeline.timeline([d for d in details if d is not None])
            if run["status"] != "RUNNING":  # a finished run's timeline never changes
                if len(self._timelines) >= 16:
                    self._timelines.pop(next(iter(self._timelines)))
                self._timelines[key] = svg
        return Response(svg, media_type="image/svg+xml")

    def item_page(self, request: Request) -> Response:
        run = self.run_or_404(request.path_params["run_id"])
        index = request.path_params["index"]
        item = self.source.get_item(run["run_id"], index)
        if item is None:
            raise HTTPException(404, f"run {run['run_id']} has no item {index}")
        item = tasks.with_task_items(item, tasks.of_run(self.source, run["run_id"]))
        return self.page("item.html", request, run=run, item=item,
                         live=item["status"] in ("PENDING", "WAITING", "RUNNING"))

    def new_page(self, request: Request) -> Response:
        jobs = self.jobs()
        rerun_of = request.query_params.get("from")
        spec: dict[str, Any] | None = None
        if rerun_of:
            run = self.source.get_run(rerun_of)
            spec = run.get("spec") if run else None
        if spec is None:
            job = request.query_params.get("job") or (next(iter(jobs)) if jobs else "job")
            spec = render.example_spec(job, jobs.get(job))
        text = json.dumps({k: v for k, v in spec.items() if k != "trigger"}, indent=2)
        return self.page("new.html", request, jobs=sorted(jobs), spec_text=text,
                         preview=render.preview(text, self.config_path, PREVIEW_ITEMS))

    def output(self, request: Request) -> Response:
        """One file a local item wrote, as a download (never shown in the page's origin)."""
        run_id, index = request.path_params["run_id"], request.path_params["index"]
        finder = getattr(self.source, "output_file", None)
        path = finder(run_id, index, request.path_params["key"]) if finder else None
        if path is None:
            raise HTTPException(404, f"item {index} of run {run_id} wrote no such file here")
        return FileResponse(path, media_type="application/octet-stream", filename=path.name,
                            headers={"x-content-type-options": "nosniff"})

    # pipelines --------------------------------------------------------------------------

    def pipeline_or_404(self, pipeline_run_id: str) -> PipelineRunView:
        run = self.pipelines.get_pipeline_run(pipeline_run_id) if self.pipelines else None
        if run is None:
            raise HTTPException(404, f"no pipeline run {pipeline_run_id}" if self.pipelines
                                else NOT_LISTED)
        return run

    def pipelines_page(self, request: Request) -> Response:
        runs = self.pipelines.list_pipeline_runs(limit=RUNS_SHOWN) if self.pipelines else None
        return self.page("pipelines.html", request, pipeline_runs=runs, not_listed=NOT_LISTED,
                         live=any(r["status"] == "RUNNING" for r in runs or []))

    def pipeline_page(self, request: Request) -> Response:
        run = self.pipeline_or_404(request.path_params["pipeline_run_id"])
        steps = self.steps_of(run)
        return self.page("pipeline.html", request, prun=run, steps=steps,
                         graph=render.pipeline_graph(steps), live=run["status"] == "RUNNING",
                         bar=render.state_bar)

    def steps_of(self, run: PipelineRunView) -> dict[str, dict[str, Any]]:
        """Each step with the run it links to (``link``: its run in this pipeline run, or
        the last one carried over) and that run's items as the run record has them."""
        steps: dict[str, dict[str, Any]] = {}
        for name, step in run["steps"].items():
            runs = step.get("runs") or []
            link = step.get("run_id") or (runs[-1] if runs else None)
            view = self.source.get_run(str(link)) if link else None
            shown = _shown(view) if view else None
            progress = f"{shown['counts']['SUCCEEDED']}/{shown['total']} items succeeded" \
                if shown and shown["total"] else ""
            steps[str(name)] = {**step, "link": link, "run": shown, "progress": progress}
        return steps

    async def rerun_pipeline(self, request: Request) -> Response:
        fields = await self.posted(request)
        run = self.pipeline_or_404(request.path_params["pipeline_run_id"])
        select = str(fields.get("select") or "failed")
        if select not in ("failed", "all"):
            raise HTTPException(400, "select: give failed or all")
        assert self.pipelines is not None  # pipeline_or_404 found the run in it
        try:  # in a thread: it waits for the rerun's record to be written
            new_id = await run_in_threadpool(self.pipelines.rerun_pipeline,
                                             run["pipeline_run_id"], select == "failed")
        except SourceError as exc:
            raise HTTPException(409, str(exc)) from None
        if _wants_json(request):
            return JSONResponse({"pipeline_run_id": new_id,
                                 "parent_pipeline_run": run["pipeline_run_id"]})
        return RedirectResponse(f"/pipelines/{quote(new_id)}", status_code=303)

    def api_pipelines(self, request: Request) -> Response:
        if self.pipelines is None:
            raise HTTPException(404, NOT_LISTED)
        return JSONResponse(self.pipelines.list_pipeline_runs(
            limit=_int_param(request, "limit", 200)))

    def api_pipeline(self, request: Request) -> Response:
        return JSONResponse(self.pipeline_or_404(request.path_params["pipeline_run_id"]))

    # actions ----------------------------------------------------------------------------

    async def start(self, request: Request) -> Response:
        fields = await self.posted(request)
        text = fields.get("spec")
        if not isinstance(text, str):
            text = json.dumps(text)
        preview = render.preview(text, self.config_path, 0)
        if preview["problems"]:
            if _wants_json(request):
                return JSONResponse({"problems": preview["problems"]}, status_code=400)
            return self.page("new.html", request, code=400, jobs=sorted(self.jobs()),
                             spec_text=text or "", preview=preview)
        try:
            run_id = self.source.start(json.loads(text))
        except FanoutInputError as exc:
            problems = [{"field": p.field, "message": p.message} for p in exc.problems]
            return JSONResponse({"problems": problems}, status_code=400)
        return _done(request, run_id, {"run_id": run_id})

    async def stop(self, request: Request) -> Response:
        await self.posted(request)
        run = self.run_or_404(request.path_params["run_id"])
        try:
            self.source.stop(run["run_id"])
        except SourceError as exc:
            raise HTTPException(409, str(exc)) from None
        return _done(request, run["run_id"], {"run_id": run["run_id"], "stopping": True})

    async def rerun(self, request: Request) -> Response:
        fields = await self.posted(request)
        run = self.run_or_404(request.path_params["run_id"])
        select = str(fields.get("select") or "failed")
        indexes: list[int] | None = None
        raw = fields.get("indexes")
        if raw not in (None, "", []):
            try:
                parts = raw if isinstance(raw, list) else str(raw).replace(",", " ").split()
                indexes = sorted({int(p) for p in parts})
            except (TypeError, ValueError):
                raise HTTPException(400, "indexes: give item indexes (integers)") from None
        try:
            new_id = self.source.rerun(run["run_id"], failed_only=select == "failed",
                                       indexes=indexes)
        except (SourceError, FanoutInputError) as exc:
            raise HTTPException(409, str(exc)) from None
        return _done(request, new_id, {"run_id": new_id, "parent_run_id": run["run_id"]})

    # JSON -------------------------------------------------------------------------------

    def api_runs(self, request: Request) -> Response:
        limit = _int_param(request, "limit", 200)
        return JSONResponse(self.source.list_runs(
            job=request.query_params.get("job") or None,
            status=request.query_params.get("status") or None, limit=limit))

    def api_run(self, request: Request) -> Response:
        return JSONResponse(self.run_or_404(request.path_params["run_id"]))

    def api_items(self, request: Request) -> Response:
        run = self.run_or_404(request.path_params["run_id"])
        return JSONResponse(self.source.list_items(
            run["run_id"], status=request.query_params.get("status") or None))

    def api_item(self, request: Request) -> Response:
        run = self.run_or_404(request.path_params["run_id"])
        item = self.source.get_item(run["run_id"], request.path_params["index"])
        if item is None:
            raise HTTPException(404, "no such item")
        return JSONResponse(tasks.with_task_items(item, tasks.of_run(self.source, run["run_id"])))

    def api_log(self, request: Request) -> Response:
        run = self.run_or_404(request.path_params["run_id"])
        index = request.path_params["index"]
        attempt = request.query_params.get("attempt")
        item = self.source.get_item(run["run_id"], index)
        if item is None:
            raise HTTPException(404, "no such item")
        lines = self.source.log_lines(run["run_id"], index,
                                      int(attempt) if attempt and attempt.isdigit() else None)
        return JSONResponse({"lines": lines, "status": item["status"],
                             "running": item["status"] in ("PENDING", "WAITING", "RUNNING")})

    async def api_expand(self, request: Request) -> Response:
        fields = await self.posted(request)
        text = fields.get("spec")
        if not isinstance(text, str):
            text = json.dumps(text)
        return JSONResponse(render.preview(text, self.config_path, PREVIEW_ITEMS))


def _shown(run: dict[str, Any], items: int | None = None) -> dict[str, Any]:
    """A run as the pages show it: counts and total always there (a run that has just
    started may not have them yet)."""
    counts = {**empty_counts(), **(run.get("counts") or {})}
    total = run.get("total") or items or 0
    if items and not run.get("total"):
        counts["PENDING"] = max(items - sum(counts.values()), counts["PENDING"])
    return {**run, "counts": counts, "total": total}


def _int_param(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name)
    return int(value) if value and value.isdigit() else default


def _with(request: Request, **changes: str) -> str:
    from urllib.parse import urlencode

    return urlencode({**request.query_params, **changes})


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or \
        request.headers.get("content-type", "").startswith("application/json")


def _done(request: Request, run_id: str, payload: dict[str, Any]) -> Response:
    if _wants_json(request):
        return JSONResponse(payload)
    return RedirectResponse(f"/runs/{quote(run_id)}", status_code=303)


async def _error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    if request.url.path.startswith("/api/") or status == 403:
        return JSONResponse({"error": detail}, status_code=status)
    return HTMLResponse(f"<!doctype html><title>{status}</title><p>{_escape(str(detail))}</p>"
                        "<p><a href=\"/\">runs</a></p>", status_code=status)


def _escape(text: str) -> str:
    from html import escape

    return escape(text)


def create_app(source: DashboardSource, guard: Guard, config_path: Path = Path("cdk.json")) -> Any:
    """The ASGI app: the routes behind the Host/token guard."""
    d = Dashboard(source, guard, config_path)
    get: list[tuple[str, Callable[[Request], Any]]] = [
        ("/", d.runs_page), ("/new", d.new_page), ("/runs/{run_id}", d.run_page),
        ("/runs/{run_id}/timeline.svg", d.timeline),
        ("/runs/{run_id}/items/{index:int}", d.item_page),
        ("/runs/{run_id}/tasks/{task_key}", partial(tasks.page, d)),
        ("/api/runs/{run_id}/tasks/{task_key}", partial(tasks.api, d)),
        ("/runs/{run_id}/items/{index:int}/outputs/{key:path}", d.output),
        ("/pipelines", d.pipelines_page), ("/pipelines/{pipeline_run_id}", d.pipeline_page),
        ("/api/pipelines", d.api_pipelines),
        ("/api/pipelines/{pipeline_run_id}", d.api_pipeline),
        ("/api/runs", d.api_runs), ("/api/runs/{run_id}", d.api_run),
        ("/api/runs/{run_id}/items", d.api_items),
        ("/api/runs/{run_id}/items/{index:int}", d.api_item),
        ("/api/runs/{run_id}/items/{index:int}/log", d.api_log),
    ]
    post: list[tuple[str, Callable[[Request], Any]]] = [
        ("/runs", d.start), ("/runs/{run_id}/stop", d.stop), ("/runs/{run_id}/rerun", d.rerun),
        ("/api/expand", d.api_expand), ("/api/runs", d.start),
        ("/api/runs/{run_id}/stop", d.stop), ("/api/runs/{run_id}/rerun", d.rerun),
        ("/pipelines/{pipeline_run_id}/rerun", d.rerun_pipeline),
        ("/api/pipelines/{pipeline_run_id}/rerun", d.rerun_pipeline),
    ]
    routes: list[Any] = [Route(p, f, methods=["GET"]) for p, f in get]
    routes += [Route(p, f, methods=["POST"]) for p, f in post]
    routes.append(Mount("/static", StaticFiles(directory=HERE / "static"), name="static"))
    app = Starlette(routes=routes, exception_handlers={HTTPException: _error, 500: _error})
    return GuardMiddleware(app, guard)
