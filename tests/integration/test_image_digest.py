"""Each attempt records the digest of the image it ran, as ECS reported it."""

from __future__ import annotations

import pytest

from fanout.records.views import attempt_view
from fanout.runtime import context
from fanout.testing.callbacks import MemoryCallbacks
from tests.integration.conftest import World, event
from tests.integration.helpers import call, launch, start_run, store

OLD = "sha256:" + "1" * 64
NEW = "sha256:" + "2" * 64


@pytest.fixture
def answers(world: World) -> MemoryCallbacks:
    fake = MemoryCallbacks()
    context.use(callbacks=fake)
    return fake


def stopped_running(kind: str, task_arn: str, run_id: str, attempt: int, digest: str) -> None:
    """A STOPPED event of the item 0's ``attempt`` whose container ran ``digest``."""
    sent = event(kind, task_arn=task_arn, run_id=run_id, index=0, attempt=attempt)
    for container in sent["detail"]["containers"]:
        container["imageDigest"] = digest
    call("record", sent)


def test_each_attempt_records_the_digest_its_container_ran(world: World,
                                                           answers: MemoryCallbacks) -> None:
    # Given an item whose first attempt ran one image and failed, and whose retry ran
    # another (the tag was pushed again in between)
    start_run("run-digest", {"job": "analyzer", "params": {"year": [1999]}})
    first = launch(world, "run-digest", 0, "token-1")["task_arn"]
    stopped_running("exit-1", first, "run-digest", 1, OLD)
    second = launch(world, "run-digest", 0, "token-2")["task_arn"]
    stopped_running("success", second, "run-digest", 2, NEW)
    # Then each attempt's record, and what `fanout items RUN INDEX` shows of it, has its own
    attempts = store().attempts("run-digest", 0)
    assert [(a.attempt, a.image_digest) for a in attempts] == [(1, OLD), (2, NEW)]
    assert [attempt_view(a)["image_digest"] for a in attempts] == [OLD, NEW]


def test_an_attempt_whose_image_was_never_pulled_has_no_digest(
        world: World, answers: MemoryCallbacks) -> None:
    # Given an attempt stopped before its image was pulled (ECS reports no digest)
    start_run("run-nopull", {"job": "analyzer", "params": {"year": [1999]},
                             "retry": {"max_attempts": 1}})
    arn = launch(world, "run-nopull", 0, "token-1")["task_arn"]
    sent = event("image-pull", task_arn=arn, run_id="run-nopull", index=0, attempt=1)
    for container in sent["detail"]["containers"]:
        container.pop("imageDigest", None)
    call("record", sent)
    # Then the attempt says none
    [attempt] = store().attempts("run-nopull", 0)
    assert attempt.status == "FAILED" and attempt.image_digest is None
