"""The team dashboard in the template (``fanout.dashboard.enabled``), from the synth with
every setting on (tests/infra/test_settings.py: one synth, through cdk-nag)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fanout.local.template import resources
from tests.infra.test_checkers import cfn_lint, placeholder_refs, summary

#: ``full`` (conftest.py) is synthesized once, by the worker that runs test_settings.py too.
pytestmark = pytest.mark.xdist_group("full-synth")


def one(template: dict[str, Any], kind: str, prefix: str = "Dashboard") -> tuple[str, Any]:
    found = {lid: r for lid, r in resources(template, kind).items() if lid.startswith(prefix)}
    assert len(found) == 1, (kind, sorted(found))
    return next(iter(found.items()))


def statements(template: dict[str, Any], kind: str, lid_prefix: str) -> dict[str, Any]:
    _, policy = one(template, kind, lid_prefix)
    return {s.get("Sid", s["Action"] if isinstance(s["Action"], str) else s["Action"][0]): s
            for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def test_the_app_is_served_by_one_function_behind_an_http_api(full: Any) -> None:
    _, template = full
    lid, function = one(template, "AWS::Lambda::Function")
    props = function["Properties"]
    assert props["Handler"] == "lambdas.dashboard.handler.handler"
    env = props["Environment"]["Variables"]
    assert {"FANOUT_TABLE", "FANOUT_STATE_MACHINE_ARN", "DASHBOARD_ISSUER",
            "DASHBOARD_CLIENT_ID", "DASHBOARD_AUTH_URL", "DASHBOARD_URL"} <= set(env)
    # Every request goes to the function (the $default route), the stage is throttled and
    # logs its requests
    _, integration = one(template, "AWS::ApiGatewayV2::Integration")
    assert lid in json.dumps(integration["Properties"]["IntegrationUri"])
    assert integration["Properties"]["PayloadFormatVersion"] == "2.0"
    _, route = one(template, "AWS::ApiGatewayV2::Route")
    assert route["Properties"]["RouteKey"] == "$default"
    _, stage = one(template, "AWS::ApiGatewayV2::Stage")
    throttle = stage["Properties"]["DefaultRouteSettings"]
    assert throttle["ThrottlingRateLimit"] == 20 and throttle["ThrottlingBurstLimit"] == 50
    assert "$context.status" in stage["Properties"]["AccessLogSettings"]["Format"]
    # And its address is an output
    assert "ApiEndpoint" in json.dumps(template["Outputs"]["DashboardUrl"])


def test_the_functions_role_reads_and_acts_on_this_stack_only(full: Any) -> None:
    _, template = full
    granted = statements(template, "AWS::IAM::Policy", "DashboardRole")
    actions = {a for s in granted.values()
               for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    # Reads of records and task logs, start/stop of runs, its own logs and traces: no write
    # to the table, nothing of the bucket, no ECS
    assert actions == {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query",
                       "logs:GetLogEvents", "states:StartExecution", "states:StopExecution",
                       "states:DescribeExecution", "logs:CreateLogStream", "logs:PutLogEvents",
                       "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    machine = one(template, "AWS::StepFunctions::StateMachine", "Workflow")[0]
    pipeline = one(template, "AWS::StepFunctions::StateMachine", "Pipelines")[0]
    assert granted["StartRuns"]["Resource"] == [{"Ref": machine}, {"Ref": pipeline}]
    stops = json.dumps(granted["StopRuns"]["Resource"])
    assert ":execution:Fanout-run:*" in stops and ":execution:Fanout-pipeline:*" in stops
    # The operator policy for CLI users grants the same, and finding the stack
    operator = statements(template, "AWS::IAM::ManagedPolicy", "DashboardOperatorPolicy")
    assert set(operator) == {"ReadRecords", "ReadTaskLogs", "StartRuns", "StopRuns",
                             "FindTheStack"}
    assert operator["FindTheStack"]["Resource"] == {"Ref": "AWS::StackId"}


def test_sign_in_is_a_user_pool_with_two_groups_and_a_pkce_client(full: Any) -> None:
    _, template = full
    _, pool = one(template, "AWS::Cognito::UserPool")
    assert pool["Properties"]["MfaConfiguration"] == "ON"
    assert pool["Properties"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    groups = {g["Properties"]["GroupName"]
              for g in resources(template, "AWS::Cognito::UserPoolGroup").values()}
    assert groups == {"viewers", "operators"}
    _, client = one(template, "AWS::Cognito::UserPoolClient")
    props = client["Properties"]
    assert not props.get("GenerateSecret") and props["AllowedOAuthFlows"] == ["code"]
    assert "/auth/callback" in json.dumps(props["CallbackURLs"])
    # The session lasts the ID token's validity: the config's 60 minutes
    assert props["IdTokenValidity"] == 60 and props["TokenValidityUnits"]["IdToken"] == "minutes"


def test_cfn_lint_finds_no_error_in_the_dashboards_resources(full: Any,
                                                             tmp_path: Path) -> None:
    # Given the dashboard's resources alone, every reference outside them a placeholder
    _, template = full
    refs = placeholder_refs(template)
    mine = {lid: r for lid, r in template["Resources"].items() if lid.startswith("Dashboard")}

    def resolve(value: Any) -> Any:
        if isinstance(value, dict):
            if "Ref" in value and value["Ref"] in template["Resources"] \
                    and value["Ref"] not in mine:
                kind = template["Resources"][value["Ref"]]["Type"]
                arn = kind in ("AWS::StepFunctions::StateMachine", "AWS::SNS::Topic")
                return refs[value["Ref"] + (".Arn" if arn else "")]
            got = value.get("Fn::GetAtt")
            if isinstance(got, list) and got[0] not in mine and got[0] in template["Resources"]:
                return refs.get(f"{got[0]}.{got[1]}", refs[got[0]])
            return {k: resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return value

    small = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": resolve(mine),
             **{k: template[k] for k in ("Mappings", "Conditions") if k in template}}
    assert len(mine) >= 15
    # When cfn-lint reads it / Then no error (W3005 is CDK's own, see test_checkers)
    findings = [f for f in cfn_lint(small, tmp_path) if f["Rule"]["Id"] != "W3005"]
    assert not findings, summary(findings)


@pytest.mark.parametrize("bad", [{"enabled": "yes"}, {"enabled": True, "session_minutes": 2}])
def test_a_bad_dashboard_setting_is_named(bad: dict[str, Any]) -> None:
    from fanout.config import load_config
    from fanout.errors import ConfigError
    from tests.infra.conftest import repo_context

    with pytest.raises(ConfigError) as exc:
        load_config({**repo_context(), "dashboard": bad})
    named = "enabled" if len(bad) == 1 else "session_minutes"
    assert exc.value.fields == [f"fanout.dashboard.{named}"]


def test_the_dashboards_asset_holds_its_allow_list_and_no_compiled_file(full: Any) -> None:
    from infra.dashboard_asset import DASHBOARD_MODULES, HANDLER_FILES, VENDORED, module_file

    # Given the synthesized dashboard asset (the folder whose handler is the dashboard's)
    stack, _ = full
    outdir = Path(stack.node.root.outdir)
    (folder,) = [p for p in outdir.glob("asset.*") if (p / "lambdas" / "dashboard").is_dir()]
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    # Then its package files are exactly the handler's and the allow-list's, with the
    # app's templates and static files, the deployment's config and the vendored libraries
    ours = {f for f in files if f.startswith(("fanout/", "lambdas/"))}
    data = {f for f in ours if f.startswith(("fanout/ui/templates/", "fanout/ui/static/"))}
    assert ours - data == set(HANDLER_FILES) | {module_file(m) for m in DASHBOARD_MODULES}
    assert "fanout/ui/templates/run.html" in data and "fanout/ui/static/app.js" in data
    assert json.loads((folder / "dashboard.json").read_text())["context"]["fanout"]["jobs"]
    top = {f.split("/")[0].removesuffix(".py") for f in files} - {"fanout", "lambdas",
                                                                  "licenses", "dashboard.json"}
    assert top == set(VENDORED)
    assert not [f for f in files if f.endswith((".so", ".pyd", ".pyc"))]
