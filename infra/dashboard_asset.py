"""The dashboard function's code asset, staged at synth (docs/decisions/0019).

It holds the handler (``lambdas/dashboard``), exactly the package modules it imports
(:data:`DASHBOARD_MODULES`, checked against the handler's import closure by
tests/unit/test_layout.py), the app's templates and static files, the deployment's config
(``dashboard.json``: the start page validates specs against the deployed jobs), and the
app's pure-Python dependencies copied from the installed distributions, without compiled
files (MarkupSafe falls back to its pure-Python escaping). pydantic and Powertools come
from the Powertools layer, as for every function.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
HANDLER = "lambdas.dashboard.handler.handler"
HANDLER_FILES = ("lambdas/__init__.py", "lambdas/dashboard/__init__.py",
                 "lambdas/dashboard/handler.py")
#: The package modules the dashboard's handler imports (function-level imports too).
DASHBOARD_MODULES: tuple[str, ...] = (
    "fanout", "fanout.aws", "fanout.aws.clients", "fanout.aws.s3", "fanout.config",
    "fanout.cost", "fanout.dashboard_config", "fanout.errors", "fanout.job_settings",
    "fanout.names", "fanout.outputs", "fanout.pipelines", "fanout.pipelines.model",
    "fanout.policy",
    "fanout.records", "fanout.records.dynamo", "fanout.records.dynamo_gate",
    "fanout.records.gate_store", "fanout.records.layout", "fanout.records.local_format",
    "fanout.records.model", "fanout.records.pipelines",
    "fanout.records.pages", "fanout.records.store", "fanout.records.views",
    "fanout.records.writes",
    "fanout.runs", "fanout.runs.stack", "fanout.runs.stack_pipelines", "fanout.runtime",
    "fanout.runtime.packing", "fanout.runtime.rerun",
    "fanout.schedule_expressions", "fanout.schema", "fanout.settings",
    "fanout.spec", "fanout.spec.axes", "fanout.spec.items_from", "fanout.spec.matrix",
    "fanout.spec.model", "fanout.spec.packing", "fanout.spec.plan", "fanout.spec.templates",
    "fanout.spec.validate",
    "fanout.ui", "fanout.ui.app", "fanout.ui.cached", "fanout.ui.deployed",
    "fanout.ui.lambda_adapter", "fanout.ui.render", "fanout.ui.security", "fanout.ui.signin",
    "fanout.ui.source", "fanout.ui.tasks", "fanout.ui.timeline", "fanout.ui.tokens",
)
#: The app's data files.
DATA_FOLDERS = ("fanout/ui/templates", "fanout/ui/static")
#: Distributions the app needs beyond the Lambda runtime and the Powertools layer: all pure
#: Python (Starlette and its AnyIO, idna; Jinja2 and MarkupSafe; typing_extensions, at the
#: version AnyIO asks for).
VENDORED = ("starlette", "anyio", "idna", "jinja2", "markupsafe", "typing_extensions")
#: Never copied: compiled extensions and caches (the asset must suit any architecture).
SKIPPED = ("*.so", "*.pyd", "*.c", "__pycache__", "*.pyc")


def module_file(module: str) -> str:
    path = module.replace(".", "/")
    return f"{path}/__init__.py" if (REPO_ROOT / path).is_dir() else f"{path}.py"


def stage(dest: Path, context: dict[str, Any]) -> Path:
    """Write the asset into ``dest`` (replaced); the deployment's ``fanout`` context goes
    into ``dashboard.json``."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in (*HANDLER_FILES, *(module_file(m) for m in DASHBOARD_MODULES)):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO_ROOT / name, target)
    for folder in DATA_FOLDERS:
        shutil.copytree(REPO_ROOT / folder, dest / folder,
                        ignore=shutil.ignore_patterns(*SKIPPED))
    for name in VENDORED:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"{name} is not installed: pip install -r requirements.txt")
        origin = Path(spec.origin)
        if origin.name == "__init__.py":
            shutil.copytree(origin.parent, dest / name, ignore=shutil.ignore_patterns(*SKIPPED))
        else:
            shutil.copyfile(origin, dest / origin.name)
        _licenses(name, dest / "licenses" / name)
    (dest / "dashboard.json").write_text(json.dumps({"context": {"fanout": context}},
                                                    indent=1, sort_keys=True))
    return dest


def _licenses(name: str, dest: Path) -> None:
    """The distribution's license files (their terms ask that copies carry them)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        files = distribution(name).files or []
    except PackageNotFoundError:
        return
    for file in files:
        if "LICENSE" in file.name.upper() or "COPYING" in file.name.upper():
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(str(file.locate())), dest / file.name)
