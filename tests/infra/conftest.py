"""Synthesize the app once per session (synth takes seconds): the template, parsed."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
# jsii's banners: Node 20 is past its end of life here.
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


#: Fixtures that synthesize a whole app, and the xdist group of the tests that use them.
#: A session- or module-scoped fixture is built once per xdist worker, and each test is its
#: own unit of work (``--dist loadgroup``): the tests of one synthesis would make every worker
#: synthesize it. In one group, one worker does, once. (``full``'s tests are grouped by their
#: modules: test_settings.py, test_dashboard.py.)
SYNTH_GROUPS = {"synthesized": "repo-synth", "scheduled": "scheduled-synth"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if Path(str(item.fspath)).parent != here:
            continue
        for fixture, group in SYNTH_GROUPS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(group))
                break


def repo_context() -> dict[str, Any]:
    """The ``fanout`` context of the repository's cdk.json."""
    context: dict[str, Any] = json.loads((REPO / "cdk.json").read_text())["context"]["fanout"]
    return context


def synthesize(context: dict[str, Any], outdir: Path) -> tuple[Any, dict[str, Any]]:
    """Build the app as app.py does (cdk-nag attached) and synthesize it: stack, template."""
    from aws_cdk import App

    from fanout.config import load_config
    from infra import nag
    from infra.stack import FanoutStack

    # The CDK CLI turns path metadata on; the tests find resources by construct path.
    app = App(outdir=str(outdir), context={"fanout": context, "aws:cdk:enable-path-metadata": True})
    config = load_config(app.node.try_get_context("fanout"))
    stack = FanoutStack(app, config.stack_name, config=config)
    nag.acknowledge(stack)
    nag.attach(app)
    assembly = app.synth()  # raises on any unacknowledged cdk-nag finding
    artifact = assembly.get_stack_artifact(stack.artifact_id)
    template: dict[str, Any] = artifact.template
    return stack, template


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any]]:
    return synthesize(repo_context(), tmp_path_factory.mktemp("cdk-out"))


@pytest.fixture(scope="session")
def template(synthesized: tuple[Any, dict[str, Any]]) -> dict[str, Any]:
    return synthesized[1]


@pytest.fixture(scope="session")
def stack(synthesized: tuple[Any, dict[str, Any]]) -> Any:
    return synthesized[0]


@pytest.fixture(scope="session")
def full(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any]]:
    """The app with every documented setting on (test_settings.everything_on), once."""
    from tests.infra.test_settings import everything_on

    return synthesize(everything_on(), tmp_path_factory.mktemp("cdk-out-full"))
