"""The Lambda code asset is an allow-list: ``lambdas/`` and exactly what the handlers import."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra.functions import LAMBDA_MODULES
from tests.imports import MODULES, closure, handler_imports

REPO = Path(__file__).resolve().parents[2]
#: Never on a handler's import path: the command, the local mode, the test fakes.
NOT_SHIPPED = ("fanout.cli", "fanout.local", "fanout.testing")


def test_the_allow_list_is_what_the_handlers_import() -> None:
    # Given every import of the handlers and of what they import, function-level ones too
    reached = closure(handler_imports(REPO / "lambdas"))
    # Then the asset's list is exactly that, and holds no CLI, local-mode or testing module
    assert set(LAMBDA_MODULES) == reached
    assert not [m for m in reached if m.startswith(NOT_SHIPPED) or m.endswith(".remote")]


def test_the_allow_list_names_only_modules_that_exist() -> None:
    assert set(LAMBDA_MODULES) <= set(MODULES)


def test_the_synthesized_asset_holds_exactly_the_allow_list(stack: Any) -> None:
    # Given the synthesized app's code asset (one, shared by the six functions)
    outdir = Path(stack.node.root.outdir)
    folders = [p for p in outdir.glob("asset.*") if p.is_dir() and (p / "lambdas").is_dir()]
    assert len(folders) == 1
    folder = folders[0]
    # When its files are listed
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    # Then they are the handlers and the allowed modules' files, nothing more
    handlers = {f"lambdas/{p.name}" for p in (REPO / "lambdas").glob("*.py")}
    modules = {MODULES[m].relative_to(REPO).as_posix() for m in LAMBDA_MODULES}
    assert files == handlers | modules
    assert not any(f.startswith(("fanout/cli", "fanout/local", "fanout/testing")) for f in files)
