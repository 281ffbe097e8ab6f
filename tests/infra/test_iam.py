"""Least privilege: what each role may do, and every Resource "*" accounted for."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fanout.local.template import logical_id, resources
from infra.stack import UNSCOPED_ACTIONS


def statements(template: dict[str, Any], role_path: str) -> list[dict[str, Any]]:
    role = logical_id(template, f"{role_path}/Resource")
    found = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            found += policy["Properties"]["PolicyDocument"]["Statement"]
    return found


def actions_of(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_every_unscoped_statement_is_an_listed_exception(template: dict[str, Any]) -> None:
    # Given every policy statement of the template
    all_statements = [
        s
        for policy in resources(template, "AWS::IAM::Policy").values()
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert all_statements

    # Then a Resource "*" only ever carries actions AWS cannot scope (the listed ones)
    unscoped = [s for s in all_statements if s["Resource"] == "*" or "*" in s["Resource"]]
    assert unscoped
    for statement in unscoped:
        assert set(actions_of(statement)) <= set(UNSCOPED_ACTIONS), statement


def test_run_task_only_on_this_apps_task_definitions_in_this_cluster(
    template: dict[str, Any]
) -> None:
    launch = statements(template, "Functions/LaunchRole")
    (run,) = [s for s in launch if "ecs:RunTask" in actions_of(s)]
    resources_ = run["Resource"] if isinstance(run["Resource"], list) else [run["Resource"]]
    joined = ["".join(p if isinstance(p, str) else "" for p in r["Fn::Join"][1])
              for r in resources_]
    assert joined == ["arn::ecs:::task-definition/fanout-analyzer:*",
                      "arn::ecs:::task-definition/fanout-analyzer-packed:*"]
    cluster = logical_id(template, "Jobs/Cluster/Resource")
    assert run["Condition"] == {"ArnEquals": {"ecs:cluster": {"Fn::GetAtt": [cluster, "Arn"]}}}


def test_pass_role_only_on_the_task_and_execution_roles(template: dict[str, Any]) -> None:
    launch = statements(template, "Functions/LaunchRole")
    (passing,) = [s for s in launch if "iam:PassRole" in actions_of(s)]
    roles = [logical_id(template, f"Jobs/Job-analyzer/{task}/{role}/Resource")
             for task in ("TaskDefinition", "PackedTaskDefinition")
             for role in ("TaskRole", "ExecutionRole")]
    assert sorted(r["Fn::GetAtt"][0] for r in passing["Resource"]) == sorted(roles)


def test_only_launch_runs_tasks_and_the_control_plane_stops_them(
    template: dict[str, Any]
) -> None:
    for name in ("Expand", "Launch", "Record", "Finalize", "Reconcile", "Abort"):
        actions = {a for s in statements(template, f"Functions/{name}Role") for a in actions_of(s)}
        assert ("ecs:RunTask" in actions) == (name == "Launch"), name
        assert ("ecs:StopTask" in actions) == (
            name in ("Launch", "Finalize", "Reconcile", "Abort")), name
        assert ("ecs:ListTasks" in actions) == (name in ("Launch", "Reconcile", "Abort")), name
        assert ("sns:Publish" in actions) == (name in ("Finalize", "Abort")), name
        assert ("s3:PutObject" in actions) == (name == "Expand"), name
        # Record and Reconcile read a packed task's batch and results (tests/infra/test_packed.py)
        assert ("s3:GetObject" in actions) == (
            name in ("Expand", "Finalize", "Abort", "Record", "Reconcile")), name
        assert ("ecs:DescribeTasks" in actions) == (name != "Expand"), name


def test_state_machine_invokes_only_its_three_functions(template: dict[str, Any]) -> None:
    role = statements(template, "Workflow/StateMachine/Role")
    (invoke,) = [s for s in role if "lambda:InvokeFunction" in actions_of(s)]
    invoked = sorted(r["Fn::GetAtt"][0] for r in invoke["Resource"])
    assert invoked == sorted(
        logical_id(template, f"Functions/{n}/Resource") for n in ("Expand", "Launch", "Finalize")
    )


def test_state_machine_writes_map_results_only_under_the_runs_results_prefixes(
        template: dict[str, Any]) -> None:
    # Given the state machine role's statements
    role = statements(template, "Workflow/StateMachine/Role")
    # When the ResultWriter's statement is picked out
    (writer,) = [s for s in role if "s3:PutObject" in actions_of(s)]
    # Then it grants exactly what AWS documents a ResultWriter needs
    assert sorted(actions_of(writer)) == sorted([
        "s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"])
    # And on the objects under runs/<run>/results/ of the manifest bucket only
    bucket = logical_id(template, "Records/Manifests/Resource")
    assert writer["Resource"] == {"Fn::Join": ["", [
        {"Fn::GetAtt": [bucket, "Arn"]}, "/runs/*/results/*"]]}
    # And no other statement of the role may write to S3
    others = [s for s in role if s is not writer]
    assert not any(a.startswith("s3:Put") or a.startswith("s3:Abort")
                   for s in others for a in actions_of(s))


@pytest.mark.parametrize("name", ["Reconcile", "Abort", "Launch"])
def test_leftover_tasks_can_be_found_and_stopped_on_this_cluster_only(
    template: dict[str, Any], name: str
) -> None:
    # Given the role of a function that stops tasks nothing waits for
    found = statements(template, f"Functions/{name}Role")
    cluster = logical_id(template, "Jobs/Cluster/Resource")
    on_cluster = {"ArnEquals": {"ecs:cluster": {"Fn::GetAtt": [cluster, "Arn"]}}}
    # Then it may list tasks and stop them, on this cluster only, and its tasks only
    (listing,) = [s for s in found if "ecs:ListTasks" in actions_of(s)]
    assert (listing["Resource"], listing["Condition"]) == ("*", on_cluster)
    (stopping,) = [s for s in found if "ecs:StopTask" in actions_of(s)]
    assert stopping["Condition"] == on_cluster
    joined = "".join(p if isinstance(p, str) else "" for p in stopping["Resource"]["Fn::Join"][1])
    assert joined.startswith("arn:") and ":task/" in joined and joined.endswith("/*")


def test_abort_may_invoke_only_itself(template: dict[str, Any]) -> None:
    # Given Abort's role and function
    role = statements(template, "Functions/AbortRole")
    abort = resources(template, "AWS::Lambda::Function")[
        logical_id(template, "Functions/Abort/Resource")]
    name = abort["Properties"]["FunctionName"]
    # Then the one function it may invoke is itself, by its fixed name (it goes on closing
    # a large run in its next invocation)
    (invoke,) = [s for s in role if "lambda:InvokeFunction" in actions_of(s)]
    assert actions_of(invoke) == ["lambda:InvokeFunction"]
    joined = invoke["Resource"]["Fn::Join"][1]
    assert joined[-1] == f":function:{name}" or joined[-1].endswith(f":function:{name}")


def test_a_jobs_tasks_write_only_the_items_outputs_and_read_a_steps_inputs(
        template: dict[str, Any]) -> None:
    # Given the job's task role
    role = statements(template, "Jobs/Job-analyzer/TaskDefinition/TaskRole")
    bucket = logical_id(template, "Records/Manifests/Resource")
    arn = {"Fn::GetAtt": [bucket, "Arn"]}
    # Then its only S3 write puts objects under runs/<run>/outputs/ of the bucket
    s3 = [s for s in role if any(a.startswith("s3:") for a in actions_of(s))]
    (writes,) = [s for s in s3 if "s3:PutObject" in actions_of(s)]
    assert sorted(actions_of(writes)) == ["s3:AbortMultipartUpload", "s3:PutObject"]
    assert writes["Resource"] == {"Fn::Join": ["", [arn, "/runs/*/outputs/*"]]}
    # And it reads only what a pipeline step is given: the fan-in objects under pipelines/
    # and the outputs of the items they list
    (reads,) = [s for s in s3 if s is not writes]
    assert actions_of(reads) == ["s3:GetObject"]
    assert reads["Resource"] == [{"Fn::Join": ["", [arn, "/pipelines/*"]]},
                                 {"Fn::Join": ["", [arn, "/runs/*/outputs/*"]]}]


@pytest.mark.parametrize("name", ["Record", "Reconcile"])
def test_the_settlers_list_only_the_items_outputs_and_results(
        template: dict[str, Any], name: str) -> None:
    role = statements(template, f"Functions/{name}Role")
    (listing,) = [s for s in role if "s3:ListBucket" in actions_of(s)]
    bucket = logical_id(template, "Records/Manifests/Resource")
    assert listing["Resource"] == {"Fn::GetAtt": [bucket, "Arn"]}
    # The items' outputs, and (the repository's job packs) a packed task's items' results
    assert listing["Condition"] == {"StringLike": {"s3:prefix": [
        "runs/*/outputs/*", "runs/*/tasks/*/items/*"]}}


def _joined(resource: Any) -> str:
    if isinstance(resource, str):
        return resource
    if "Fn::Join" in resource:
        return "".join(p if isinstance(p, str) else json.dumps(p) for p in resource["Fn::Join"][1])
    return json.dumps(resource)


def test_decide_starts_only_the_run_state_machine_and_reads_only_its_executions(
        template: dict[str, Any]) -> None:
    # Given the pipeline loop's Decide
    decide = statements(template, "Functions/DecideRole")
    by_action = {a: [_joined(r) for r in (s["Resource"] if isinstance(s["Resource"], list)
                                         else [s["Resource"]])]
                 for s in decide for a in actions_of(s)}
    # Then it may start executions of the run state machine, by its name, and nothing else
    assert [r.endswith(":stateMachine:Fanout-run") for r in by_action["states:StartExecution"]] \
        == [True]
    # And read and stop that machine's executions only
    for action in ("states:DescribeExecution", "states:StopExecution"):
        assert [r.endswith(":execution:Fanout-run:*") for r in by_action[action]] == [True]
    # And write objects only under pipelines/, and list only the items' outputs
    assert [r.endswith("/pipelines/*") for r in by_action["s3:PutObject"]] == [True]
    (listing,) = [s for s in decide if "s3:ListBucket" in actions_of(s)]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["runs/*/outputs/*"]}}
    # And no ECS, no other function
    assert not [a for a in by_action if a.startswith(("ecs:", "lambda:", "iam:"))]


def test_step_ended_may_stop_only_run_executions(template: dict[str, Any]) -> None:
    granted = statements(template, "Functions/StepEndedRole")
    states = {a for s in granted for a in actions_of(s) if a.startswith("states:")}
    assert states == {"states:StopExecution", "states:SendTaskSuccess",
                      "states:SendTaskFailure", "states:SendTaskHeartbeat"}
    (stop,) = [s for s in granted if "states:StopExecution" in actions_of(s)]
    assert _joined(stop["Resource"]).endswith(":execution:Fanout-run:*")


def test_pipeline_state_machine_invokes_only_decide_and_await_step(
        template: dict[str, Any]) -> None:
    granted = statements(template, "Pipelines/StateMachine/Role")
    (invoke,) = [s for s in granted if "lambda:InvokeFunction" in actions_of(s)]
    decide = logical_id(template, "Functions/Decide/Resource")
    await_step = logical_id(template, "Functions/AwaitStep/Resource")
    assert invoke["Resource"] == [{"Fn::GetAtt": [decide, "Arn"]},
                                  {"Fn::GetAtt": [await_step, "Arn"]}]
    assert not [s for s in granted if any(a.startswith(("states:", "s3:", "dynamodb:"))
                                          for a in actions_of(s))]
