"""Serving the dashboard: a listening socket, and uvicorn in this thread or in another."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

from fanout.errors import Problem, UsageError


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one, chosen by the system)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError([Problem("--port" if port else "--host",
                                  f"cannot listen on {host}:{port}: {exc.strerror}")]) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class Background:
    """The dashboard served by uvicorn in a thread (tests, benchmarks, the screenshot script)."""

    def __init__(self, source: Any, config_path: Path, host: str = "127.0.0.1") -> None:
        import uvicorn

        from fanout.ui.app import create_app
        from fanout.ui.security import Guard

        self.host = host
        self.sock = bind(host, 0)
        self.port = int(self.sock.getsockname()[1])
        self.guard = Guard.for_address(host, self.port)
        self.source = source
        self.url = f"http://{host}:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(
            create_app(source, self.guard, config_path), log_level="warning",
            access_log=False, lifespan="off"))
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                        daemon=True, name="fanout-ui")

    def __enter__(self) -> Background:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the dashboard did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self.sock.close()
