"""``fanout ui``: the dashboard on this machine (the web stack loads only when it runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fanout.cli.args import add_config_argument
from fanout.errors import Problem, UsageError


def add(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ui", help="the dashboard: runs, the item grid and timeline, attempts and logs",
        description="Start the web dashboard on this machine and open it in the browser. "
                    "It reads the local runs (--local, the default) or a deployed stack "
                    "(--stack NAME, with your AWS credentials). Nothing is deployed.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--local", action="store_true",
                       help="the local runs in --records-dir (the default)")
    where.add_argument("--stack", metavar="NAME", help="the runs of a deployed stack")
    parser.add_argument("--records-dir", default=".fanout/runs", metavar="DIR",
                        help="where the local runs are (default .fanout/runs)")
    parser.add_argument("--region", metavar="REGION", help="the stack's region (with --stack)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="the address to bind (default 127.0.0.1); any other address "
                             "requires the access token printed on start")
    parser.add_argument("--port", type=int, default=0,
                        help="the port (default: a free one, printed on start)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    add_config_argument(parser)
    parser.set_defaults(func=run_ui)


def open_source(args: argparse.Namespace) -> Any:
    from fanout.ui.local_runs import open_local

    if not args.stack:
        return open_local(Path(args.records_dir), Path(args.config))
    from fanout.cli.runs import source
    from fanout.runs.stack_pipelines import StackPipelineRuns
    from fanout.ui.cached import Cached

    runs: Any = source(args)
    return Cached(runs, Path(args.config), pipelines=StackPipelineRuns(runs.stack))


def run_ui(args: argparse.Namespace) -> int:
    import uvicorn

    from fanout.ui.app import create_app
    from fanout.ui.security import Guard
    from fanout.ui.server import bind

    if not 0 <= args.port <= 65535:
        raise UsageError([Problem("--port", "must be 0..65535")])
    source = open_source(args)
    sock = bind(args.host, args.port)
    port = int(sock.getsockname()[1])
    guard = Guard.for_address(args.host, port)
    shown_host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown_host}:{port}/"
    if guard.access_token:
        url += f"?token={guard.access_token}"
    where = f"the local runs in {args.records_dir}" if source.kind == "local" else \
        f"stack {args.stack}"
    print(f"fanout ui: {where} at {url}", flush=True)
    if guard.access_token:
        print("fanout ui: bound beyond loopback; every request needs the token above",
              file=sys.stderr, flush=True)
    if not args.no_browser:
        import webbrowser

        webbrowser.open(url)
    app = create_app(source, guard, Path(args.config))
    # No access log: a request line may carry the access token.
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0
