"""Fixtures of the pure unit tests: the repository's deployment config and config builders."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fanout.config import FanoutConfig, load_config

REPO = Path(__file__).resolve().parents[2]
CDK_JSON = REPO / "cdk.json"


def _context() -> dict[str, Any]:
    return json.loads(CDK_JSON.read_text())["context"]["fanout"]


@pytest.fixture(scope="session")
def cdk_json() -> Path:
    return CDK_JSON


@pytest.fixture(scope="session")
def config() -> FanoutConfig:
    """The deployment config the repository ships (cdk.json)."""
    return load_config(_context())


@pytest.fixture(scope="session")
def make_config() -> Callable[..., FanoutConfig]:
    """cdk.json's config with the item cap and the analyzer's templates changed."""

    def make(max_items: int | None = None, **job: Any) -> FanoutConfig:
        context = copy.deepcopy(_context())
        if max_items is not None:
            context["limits"]["max_items_per_run"] = max_items
        context["jobs"]["analyzer"].update(job)
        return load_config(context)

    return make
