"""The team dashboard (opt-in, ``fanout.dashboard``): ``fanout ui``'s app on Lambda behind an
HTTP API, signed in with a Cognito user pool (groups ``viewers`` and ``operators``), and an
``operator`` managed policy for CLI users. docs/decisions/0019, docs/ui.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import ArnFormat, Aws, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from fanout.config import FanoutConfig
from infra.dashboard_asset import HANDLER, stage
from infra.powertools import ARCHITECTURE, RUNTIME

#: The two groups of the user pool (fanout.ui.signin reads them from the ID token).
GROUPS = {"viewers": "see runs, items, logs and outputs",
          "operators": "also start, stop and rerun runs"}
#: Memory of the function: 1,769 MB is one full vCPU (a 10,000-item page is CPU work).
MEMORY_MB = 1769
#: API Gateway ends an integration at 30 s.
TIMEOUT_SECONDS = 29


class Dashboard(Construct):
    """The function, its HTTP API, the user pool and its client, the operator policy."""

    def __init__(self, scope: Construct, id: str, *, config: FanoutConfig, context: dict[str, Any],
                 table: dynamodb.ITable, state_machine_arn: str, state_machine_name: str,
                 pipeline_machine_arn: str, pipeline_machine_name: str,
                 job_log_groups: dict[str, logs.ILogGroup], powertools: lambda_.ILayerVersion,
                 log_retention: logs.RetentionDays) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        settings = config.dashboard
        self.executions = stack.format_arn(
            service="states", resource="execution", resource_name=f"{state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME)
        self.pipeline_machine_arn = pipeline_machine_arn
        self.pipeline_executions = stack.format_arn(
            service="states", resource="execution", resource_name=f"{pipeline_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME)

        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention,
                                       removal_policy=RemovalPolicy.DESTROY)
        self.access_logs = logs.LogGroup(self, "AccessLogs", retention=log_retention,
                                         removal_policy=RemovalPolicy.DESTROY)
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                             description="fanout dashboard function")
        self.log_group.grant_write(self.role)
        for statement in self.statements(table, state_machine_arn, job_log_groups):
            self.role.add_to_policy(statement)

        outdir = Path(stack.node.root.outdir if hasattr(stack.node.root, "outdir") else ".")
        code = stage(outdir / f"dashboard-src-{stack.stack_name}", context)
        self.function = lambda_.Function(
            self, "Function", description="fanout dashboard", runtime=RUNTIME,
            architecture=ARCHITECTURE, handler=HANDLER, code=lambda_.Code.from_asset(str(code)),
            layers=[powertools], memory_size=MEMORY_MB,
            timeout=Duration.seconds(TIMEOUT_SECONDS), role=self.role,
            log_group=self.log_group, tracing=lambda_.Tracing.ACTIVE)
        self.api = apigw.HttpApi(
            self, "Api", description="fanout dashboard",
            default_integration=integrations.HttpLambdaIntegration("App", self.function))
        self._stage_settings(settings.requests_per_second)
        self.url = self.api.api_endpoint

        self.user_pool = cognito.UserPool(
            self, "Users", self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            auto_verify=cognito.AutoVerifiedAttrs(email=True),
            feature_plan=cognito.FeaturePlan.LITE,
            mfa=cognito.Mfa.REQUIRED if settings.mfa == "required" else cognito.Mfa.OPTIONAL,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            password_policy=cognito.PasswordPolicy(
                min_length=12, require_digits=True, require_lowercase=True,
                require_uppercase=True, require_symbols=True,
                temp_password_validity=Duration.days(3)),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            removal_policy=RemovalPolicy.DESTROY)
        prefix = settings.domain_prefix or Fn.join(
            "-", [config.stack_name.lower()[:40], "fanout", Aws.ACCOUNT_ID])
        self.domain = self.user_pool.add_domain(
            "SignIn", cognito_domain=cognito.CognitoDomainOptions(domain_prefix=prefix))
        minutes = settings.session_minutes
        self.client = self.user_pool.add_client(
            "Dashboard", generate_secret=False, auth_flows=cognito.AuthFlow(),
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL,
                        cognito.OAuthScope.PROFILE],
                callback_urls=[f"{self.url}/auth/callback"], logout_urls=[f"{self.url}/"]),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            id_token_validity=Duration.minutes(minutes),
            access_token_validity=Duration.minutes(minutes),
            refresh_token_validity=Duration.minutes(max(60, minutes)),
            prevent_user_existence_errors=True, enable_token_revocation=True)
        for name, what in GROUPS.items():
            cognito.CfnUserPoolGroup(self, name.capitalize(),
                                     user_pool_id=self.user_pool.user_pool_id,
                                     group_name=name, description=f"fanout dashboard: {what}")

        self.function.add_environment("FANOUT_STACK_NAME", Aws.STACK_NAME)
        self.function.add_environment("FANOUT_TABLE", table.table_name)
        self.function.add_environment("FANOUT_STATE_MACHINE_ARN", state_machine_arn)
        self.function.add_environment("FANOUT_PIPELINE_STATE_MACHINE_ARN", pipeline_machine_arn)
        self.function.add_environment("FANOUT_JOB_LOG_GROUPS", stack.to_json_string(
            {job: group.log_group_name for job, group in job_log_groups.items()}))
        self.function.add_environment("DASHBOARD_URL", self.url)
        self.function.add_environment("DASHBOARD_ISSUER", self.user_pool.user_pool_provider_url)
        self.function.add_environment("DASHBOARD_CLIENT_ID", self.client.user_pool_client_id)
        self.function.add_environment("DASHBOARD_AUTH_URL", self.domain.base_url())

        self.operator_policy = iam.ManagedPolicy(
            self, "OperatorPolicy", managed_policy_name=f"{stack.stack_name}-operator",
            description="fanout CLI: read runs and logs, start, stop and rerun runs",
            statements=[*self.statements(table, state_machine_arn, job_log_groups),
                        iam.PolicyStatement(sid="FindTheStack",
                                            actions=["cloudformation:DescribeStacks"],
                                            resources=[Aws.STACK_ID])])

    def statements(self, table: dynamodb.ITable, state_machine_arn: str,
                   job_log_groups: dict[str, logs.ILogGroup]) -> list[iam.PolicyStatement]:
        """What reading runs and acting on them takes: the function's and an operator's."""
        return [
            iam.PolicyStatement(
                sid="ReadRecords",
                actions=["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"],
                resources=[table.table_arn, f"{table.table_arn}/index/*"]),
            iam.PolicyStatement(
                sid="ReadTaskLogs", actions=["logs:GetLogEvents"],
                resources=[group.log_group_arn for group in job_log_groups.values()]),
            iam.PolicyStatement(sid="StartRuns", actions=["states:StartExecution"],
                                resources=[state_machine_arn, self.pipeline_machine_arn]),
            iam.PolicyStatement(sid="StopRuns",
                                actions=["states:StopExecution", "states:DescribeExecution"],
                                resources=[self.executions, self.pipeline_executions]),
        ]

    def _stage_settings(self, per_second: int) -> None:
        """Throttle the default stage (a runaway script cannot run up a bill) and log its
        requests as JSON (who asked what, when; never a cookie or a token)."""
        stage = self.api.default_stage
        assert stage is not None
        cfn = stage.node.default_child
        assert isinstance(cfn, apigw.CfnStage)
        cfn.default_route_settings = apigw.CfnStage.RouteSettingsProperty(
            throttling_rate_limit=per_second, throttling_burst_limit=int(per_second * 2.5))
        fields = {"requestId": "requestId", "ip": "identity.sourceIp",
                  "requestTime": "requestTime", "method": "httpMethod", "path": "path",
                  "status": "status", "responseLength": "responseLength",
                  "integrationLatency": "integrationLatency"}
        cfn.access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(
            destination_arn=self.access_logs.log_group_arn,
            format="{" + ",".join(f'"{k}":"$context.{v}"' for k, v in fields.items()) + "}")
