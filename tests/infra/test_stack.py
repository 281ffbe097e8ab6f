"""The synthesized stack: every resource a deployment needs, with its key properties."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from fanout import metrics_names, schema
from fanout.local.template import logical_id, resources
from fanout.settings import COMMON_VARIABLES, FUNCTION_ENVS
from infra.functions import function_title
from tests.infra.conftest import repo_context


@pytest.fixture(scope="module")
def assertions(template: dict[str, Any]) -> Template:
    return Template.from_json(template)


def by_path(template: dict[str, Any], type_name: str, path: str) -> dict[str, Any]:
    """The one resource of a type whose construct path contains ``path``."""
    found = [
        res for res in resources(template, type_name).values()
        if path in res.get("Metadata", {}).get("aws:cdk:path", "")
    ]
    assert len(found) == 1, f"{len(found)} {type_name} at {path}"
    return found[0]


def test_network_is_public_subnets_without_nat(assertions: Template) -> None:
    # Then: a VPC with DNS hostnames, two public subnets, no NAT gateway, flow logs
    assertions.has_resource_properties("AWS::EC2::VPC", {"EnableDnsHostnames": True})
    assertions.resource_count_is("AWS::EC2::Subnet", 2)
    assertions.all_resources_properties("AWS::EC2::Subnet", {"MapPublicIpOnLaunch": True})
    assertions.resource_count_is("AWS::EC2::NatGateway", 0)
    assertions.resource_count_is("AWS::EC2::FlowLog", 1)


def test_task_security_group_has_no_ingress(template: dict[str, Any]) -> None:
    group = by_path(template, "AWS::EC2::SecurityGroup", "Network/TaskSecurityGroup")
    assert "SecurityGroupIngress" not in group["Properties"]
    assert not resources(template, "AWS::EC2::SecurityGroupIngress")


def test_cluster_is_fargate_only_with_insights(assertions: Template) -> None:
    assertions.has_resource_properties("AWS::ECS::Cluster", {
        "ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}],
    })
    assertions.has_resource_properties("AWS::ECS::ClusterCapacityProviderAssociations", {
        "CapacityProviders": Match.array_equals(["FARGATE", "FARGATE_SPOT"]),
    })
    assertions.resource_count_is("AWS::AutoScaling::AutoScalingGroup", 0)


def test_each_job_has_a_scanned_repository_keeping_n_images(template: dict[str, Any]) -> None:
    # Given the config's job
    job = repo_context()["jobs"]["analyzer"]
    keep = job.get("keep_images", 10)

    # Then its repository: explicit lowercase name, scan on push, lifecycle keeps N
    repo = by_path(template, "AWS::ECR::Repository", "Jobs/Job-analyzer/Repository")
    props = repo["Properties"]
    assert props["RepositoryName"] == "fanout/analyzer"
    assert props["ImageScanningConfiguration"] == {"ScanOnPush": True}
    policy = props["LifecyclePolicy"]["LifecyclePolicyText"]
    assert f'"countNumber":{keep}' in policy and "imageCountMoreThan" in policy


def test_task_definition_follows_the_job_config(template: dict[str, Any]) -> None:
    job = repo_context()["jobs"]["analyzer"]
    task = by_path(template, "AWS::ECS::TaskDefinition", "Jobs/Job-analyzer/TaskDefinition")
    props = task["Properties"]
    assert props["Cpu"] == str(job["cpu"]) and props["Memory"] == str(job["memory"])
    assert props["RequiresCompatibilities"] == ["FARGATE"]
    assert props["RuntimePlatform"]["CpuArchitecture"] == job["architecture"]
    (container,) = props["ContainerDefinitions"]
    assert container["Name"] == "analyzer"
    assert container["Memory"] == job["memory"]
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"


def test_every_log_group_has_the_configured_retention(assertions: Template) -> None:
    assertions.all_resources_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30})


def test_records_table(assertions: Template, template: dict[str, Any]) -> None:
    assertions.has_resource_properties("AWS::DynamoDB::Table", {
        "BillingMode": "PAY_PER_REQUEST",
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "TimeToLiveSpecification": {"AttributeName": schema.TTL_ATTRIBUTE, "Enabled": True},
        "KeySchema": [
            {"AttributeName": schema.PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": schema.SORT_KEY, "KeyType": "RANGE"},
        ],
    })
    (table,) = resources(template, "AWS::DynamoDB::Table").values()
    indexes = {
        gsi["IndexName"]: tuple(k["AttributeName"] for k in gsi["KeySchema"])
        for gsi in table["Properties"]["GlobalSecondaryIndexes"]
    }
    assert indexes == schema.INDEXES


def test_manifest_bucket_is_private_encrypted_tls_only_and_expires(
    assertions: Template, template: dict[str, Any]
) -> None:
    assertions.has_resource_properties("AWS::S3::Bucket", {
        "BucketEncryption": Match.object_like({}),
        "PublicAccessBlockConfiguration": {
            "BlockPublicAcls": True, "BlockPublicPolicy": True,
            "IgnorePublicAcls": True, "RestrictPublicBuckets": True,
        },
        "LifecycleConfiguration": {"Rules": Match.array_with([
            Match.object_like({"ExpirationInDays": 30, "Status": "Enabled"}),
        ])},
    })
    (policy,) = resources(template, "AWS::S3::BucketPolicy").values()
    denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"]
              if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


@pytest.mark.parametrize("name", sorted(FUNCTION_ENVS))
def test_function(template: dict[str, Any], name: str) -> None:
    # Given the function of this name
    function = by_path(template, "AWS::Lambda::Function", f"Functions/{function_title(name)}/")
    props = function["Properties"]

    # Then it runs the handler on arm64 Python 3.12 with the pinned Powertools layer of
    # the region it is deployed to (the repository's config binds no region)
    assert props["Handler"] == f"lambdas.{name}.handler"
    assert props["Architectures"] == ["arm64"]
    assert props["Runtime"] == "python3.12"
    assert props["TracingConfig"] == {"Mode": "Active"}
    assert props["Layers"] == [{"Fn::FindInMap": ["PowertoolsLayer", {"Ref": "AWS::Region"},
                                                  "arn"]}]
    layers = template["Mappings"]["PowertoolsLayer"]
    assert layers["eu-west-1"] == {"arn": "arn:aws:lambda:eu-west-1:017000801446:layer:"
                                          "AWSLambdaPowertoolsPythonV3-python312-arm64:27"}
    # And its env vars are exactly its handler's env model (plus Powertools' settings)
    variables = props["Environment"]["Variables"]
    assert set(variables) == FUNCTION_ENVS[name].variable_names() | COMMON_VARIABLES
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == metrics_names.NAMESPACE
    # And its own role and log group
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    assert f"Functions{function_title(name)}Role" in role
    assert "LoggingConfig" in props


def test_every_function_has_its_own_role(template: dict[str, Any]) -> None:
    roles = [f["Properties"]["Role"]["Fn::GetAtt"][0]
             for f in resources(template, "AWS::Lambda::Function").values()]
    assert len(roles) == len(set(roles)) == len(FUNCTION_ENVS)


def test_record_retries_then_dead_letters(template: dict[str, Any]) -> None:
    record = by_path(template, "AWS::Lambda::Function", "Functions/Record/")
    assert "DeadLetterConfig" in record["Properties"]
    config = by_path(template, "AWS::Lambda::EventInvokeConfig", "Functions/Record/")
    assert config["Properties"]["MaximumRetryAttempts"] == 2


def test_task_stopped_rule_invokes_record_with_retries_and_dlq(template: dict[str, Any]) -> None:
    rule = by_path(template, "AWS::Events::Rule", "Events/TaskStopped")
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.ecs"]
    assert pattern["detail-type"] == ["ECS Task State Change"]
    assert pattern["detail"]["lastStatus"] == ["STOPPED"]
    assert pattern["detail"]["startedBy"] == [schema.STARTED_BY]
    assert pattern["detail"]["clusterArn"] == [{"Fn::GetAtt": [Match.any_value(), "Arn"]}] or \
        "Fn::GetAtt" in pattern["detail"]["clusterArn"][0]
    (target,) = rule["Properties"]["Targets"]
    assert "Record" in target["Arn"]["Fn::GetAtt"][0]
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] > 0


def test_run_ended_rule_invokes_abort(template: dict[str, Any]) -> None:
    rule = by_path(template, "AWS::Events::Rule", "Events/RunEnded")
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.states"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert sorted(pattern["detail"]["status"]) == ["ABORTED", "FAILED", "TIMED_OUT"]
    assert "Ref" in pattern["detail"]["stateMachineArn"][0]
    (target,) = rule["Properties"]["Targets"]
    assert "Abort" in target["Arn"]["Fn::GetAtt"][0]


def test_reconcile_runs_on_the_configured_rate(template: dict[str, Any]) -> None:
    rule = by_path(template, "AWS::Events::Rule", "Events/Reconcile")
    assert rule["Properties"]["ScheduleExpression"] == "rate(5 minutes)"
    (target,) = rule["Properties"]["Targets"]
    assert "Reconcile" in target["Arn"]["Fn::GetAtt"][0]


def test_state_machine_is_standard_logged_and_traced(assertions: Template) -> None:
    assertions.has_resource_properties("AWS::StepFunctions::StateMachine", {
        "StateMachineType": "STANDARD",
        "TracingConfiguration": {"Enabled": True},
        "LoggingConfiguration": Match.object_like({"Level": "ALL"}),
        "StateMachineName": "Fanout-run",
    })


def test_state_machine_logs_hold_no_execution_data(template: dict[str, Any]) -> None:
    # Given the state machine (its states' inputs and outputs hold the items' environment
    # values and the task tokens)
    # (and the pipeline state machine, whose state carries AwaitStep's task token)
    machines = resources(template, "AWS::StepFunctions::StateMachine").values()
    assert len(machines) == 2
    # Then their logs record every event but never the data that went through them
    for machine in machines:
        logging = machine["Properties"]["LoggingConfiguration"]
        assert logging["IncludeExecutionData"] is False
        assert logging["Level"] == "ALL"


def alarm_arns_of_this_account() -> dict[str, Any]:
    return {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":cloudwatch:",
                              {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"},
                              ":alarm:*"]]}


def test_notifications_topic_is_encrypted_with_its_own_rotated_key(
        template: dict[str, Any]) -> None:
    # Given the topic and the key it names
    topic = by_path(template, "AWS::SNS::Topic", "Notifications/Topic/")
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = template["Resources"][key_id]
    # Then it is a customer-managed key of the stack, rotated (not alias/aws/sns, whose
    # policy CloudWatch cannot use)
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True


def test_key_lets_cloudwatch_alarms_of_this_account_and_eventbridge_use_it(
        template: dict[str, Any]) -> None:
    # Given the topic key's policy, statement by service principal
    (key,) = resources(template, "AWS::KMS::Key").values()
    by_service = {s["Principal"]["Service"]: s for s in key["Properties"]["KeyPolicy"]["Statement"]
                  if "Service" in s["Principal"]}
    # Then CloudWatch may use it, only for alarms of this account and region
    cloudwatch = by_service["cloudwatch.amazonaws.com"]
    assert cloudwatch["Effect"] == "Allow"
    assert sorted(cloudwatch["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert cloudwatch["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {"aws:SourceArn": alarm_arns_of_this_account()},
    }
    # And EventBridge may use it, without source conditions: SNS does not support them
    # in a key policy for EventBridge-to-encrypted-topic deliveries
    events = by_service["events.amazonaws.com"]
    assert sorted(events["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert "Condition" not in events
    # And no other service principal is named
    assert set(by_service) == {"cloudwatch.amazonaws.com", "events.amazonaws.com"}


def test_topic_policy_lets_alarms_of_this_account_publish_over_tls_only(
        template: dict[str, Any]) -> None:
    # Given the topic's policy
    (policy,) = resources(template, "AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    denies = [s for s in statements if s["Effect"] == "Deny"]
    # Then publishing without TLS is denied to everyone (enforce_ssl kept)
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)
    # And CloudWatch alarms of this account, and only they, are allowed to publish
    (alarms,) = allows
    assert alarms["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert alarms["Action"] == "sns:Publish"
    assert alarms["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {"aws:SourceArn": alarm_arns_of_this_account()},
    }
    topic = logical_id(template, "Notifications/Topic/Resource")
    assert alarms["Resource"] == {"Ref": topic}
    assert policy["Properties"]["Topics"] == [{"Ref": topic}]


@pytest.mark.parametrize("function", ["Finalize", "Abort"])
def test_announcers_publish_with_exactly_what_an_encrypted_topic_needs(
        template: dict[str, Any], function: str) -> None:
    # Given the role's statements on the topic and its key (Finalize and Abort announce
    # the endings of runs)
    role = logical_id(template, f"Functions/{function}Role/Resource")
    statements = [s for p in resources(template, "AWS::IAM::Policy").values()
                  if {"Ref": role} in p["Properties"]["Roles"]
                  for s in p["Properties"]["PolicyDocument"]["Statement"]]
    key = logical_id(template, "Notifications/TopicKey/Resource")
    on_key = [s for s in statements if s["Resource"] == {"Fn::GetAtt": [key, "Arn"]}]
    # Then it may publish, and use the key for exactly that
    assert [sorted(s["Action"]) for s in on_key] == [["kms:Decrypt", "kms:GenerateDataKey"]]
    topic = logical_id(template, "Notifications/Topic/Resource")
    assert any(s["Action"] == "sns:Publish" and s["Resource"] == {"Ref": topic}
               for s in statements)


def test_alarms_watch_the_shared_metric_names(template: dict[str, Any]) -> None:
    alarms = resources(template, "AWS::CloudWatch::Alarm").values()
    watched = {a["Properties"].get("MetricName") for a in alarms}
    assert {metrics_names.RUNS_FAILED, metrics_names.ITEMS_FAILED,
            metrics_names.LAUNCH_THROTTLED, metrics_names.NOTIFICATIONS_FAILED,
            "ApproximateNumberOfMessagesVisible"} <= watched
    assert all(a["Properties"]["AlarmActions"] for a in alarms)
    assert resources(template, "AWS::CloudWatch::Dashboard")


def test_outputs_a_user_needs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    for name in ("StateMachineArn", "StateMachineConsole", "RecordsTable", "ManifestBucket",
                 "Cluster", "RepositoryAnalyzer", "PushAnalyzer"):
        assert name in outputs, name
    push = outputs["PushAnalyzer"]["Value"]["Fn::Join"][1]
    text = "".join(p for p in push if isinstance(p, str))
    assert "docker login" in text and "docker push" in text and "linux/arm64" in text


@pytest.mark.parametrize("name", sorted(FUNCTION_ENVS))
def test_function_env_parses_into_its_model(template: dict[str, Any], name: str) -> None:
    # Given the function's env with every deploy-time token replaced by a placeholder
    from fanout.local.template import placeholders, resolve

    function = by_path(template, "AWS::Lambda::Function", f"Functions/{function_title(name)}/")
    env = resolve(function["Properties"]["Environment"]["Variables"], placeholders(template))

    # When its handler reads it, Then it parses (JSON values included)
    parsed = FUNCTION_ENVS[name].from_env(env)
    if name == "launch":
        assert parsed.fanout_task_definitions["analyzer"].container == "analyzer"  # type: ignore[attr-defined]
    if name == "expand":
        assert "analyzer" in parsed.fanout_jobs  # type: ignore[attr-defined]
