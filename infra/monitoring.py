"""Run notifications (SNS), and the dashboard and alarms an operator watches."""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from fanout import metrics_names

#: What a service needs of the key to publish to the encrypted topic (SNS developer guide,
#: "Enable compatibility between event sources from AWS services and encrypted topics").
TOPIC_KEY_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey*"]


class Notifications(Construct):
    """The encrypted topic Finalize publishes run summaries to and the alarms notify.

    The key is customer-managed: CloudWatch cannot use the AWS managed key
    ``alias/aws/sns``, so alarms could never publish to a topic encrypted with it
    (docs/decisions/0004-notifications-key.md).
    """

    def __init__(self, scope: Construct, id: str, *, email: str | None) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        alarms_of_this_account = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {"aws:SourceArn": stack.format_arn(
                service="cloudwatch", resource="alarm", resource_name="*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )},
        }
        self.key = kms.Key(
            self,
            "TopicKey",
            description="fanout notifications topic (run summaries, alarms)",
            enable_key_rotation=True,
            # Nothing stays encrypted under it once delivered: it goes with the topic.
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchAlarmsPublish",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=TOPIC_KEY_ACTIONS,
            resources=["*"],
            conditions=alarms_of_this_account,
        ))
        # EventBridge rules that target the topic: SNS documents that aws:SourceAccount and
        # aws:SourceArn are not supported in a key policy for EventBridge-to-encrypted-topic
        # (the delivery would fail); the topic policy is what limits who may publish.
        self.key.add_to_resource_policy(iam.PolicyStatement(
            sid="EventBridgeRulesPublish",
            principals=[iam.ServicePrincipal("events.amazonaws.com")],
            actions=TOPIC_KEY_ACTIONS,
            resources=["*"],
        ))
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name="fanout runs",
            master_key=self.key,
            enforce_ssl=True,
        )
        # enforce_ssl makes the topic's policy hold a Deny only; a service principal needs
        # an Allow. Finalize publishes through its role (same account).
        self.topic.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchAlarmsOfThisAccount",
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["sns:Publish"],
            resources=[self.topic.topic_arn],
            conditions=alarms_of_this_account,
        ))
        # SNS keeps a message it could not deliver to a subscriber here (14 days), under the
        # topic's key; SNS itself encrypts into it (SNS developer guide, "Configuring an
        # Amazon SNS dead-letter queue for a subscription").
        self.dead_letters: sqs.Queue | None = None
        if email:
            self.key.add_to_resource_policy(iam.PolicyStatement(
                sid="SnsDeadLetters",
                principals=[iam.ServicePrincipal("sns.amazonaws.com")],
                actions=TOPIC_KEY_ACTIONS,
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            ))
            self.dead_letters = sqs.Queue(
                self,
                "DeadLetters",
                encryption=sqs.QueueEncryption.KMS,
                encryption_master_key=self.key,
                enforce_ssl=True,
                retention_period=Duration.days(14),
            )
            self.topic.add_subscription(subscriptions.EmailSubscription(
                email, dead_letter_queue=self.dead_letters))


def fanout_metric(name: str, statistic: str = "Sum") -> cloudwatch.Metric:
    """A metric the functions emit (Powertools: namespace Fanout, dimension service)."""
    return cloudwatch.Metric(
        namespace=metrics_names.NAMESPACE,
        metric_name=name,
        dimensions_map={"service": metrics_names.SERVICE},
        statistic=statistic,
        period=Duration.minutes(5),
    )


class Monitoring(Construct):
    """Alarms on failed runs, failed items, launch throttles and dead letters; a dashboard."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        state_machine: sfn.StateMachine,
        dead_letters: sqs.IQueue,
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, id)
        runs_failed = fanout_metric(metrics_names.RUNS_FAILED)
        items_failed = fanout_metric(metrics_names.ITEMS_FAILED)
        throttled = fanout_metric(metrics_names.LAUNCH_THROTTLED)
        dead = dead_letters.metric_approximate_number_of_messages_visible(
            period=Duration.minutes(5), statistic="Maximum"
        )

        def alarm(
            name: str, metric: cloudwatch.IMetric, threshold: float, what: str
        ) -> cloudwatch.Alarm:
            made = cloudwatch.Alarm(
                self,
                name,
                alarm_description=what,
                metric=metric,
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=(
                    cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
                ),
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            made.add_alarm_action(actions.SnsAction(topic))
            return made

        self.alarms = {
            "RunsFailed": alarm("RunsFailed", runs_failed, 1, "a fanout run failed"),
            "ExecutionsFailed": alarm(
                "ExecutionsFailed",
                state_machine.metric_failed(period=Duration.minutes(5)),
                1,
                "a run's execution failed, timed out or was rejected",
            ),
            "ItemsFailed": alarm("ItemsFailed", items_failed, 1, "items of fanout runs failed"),
            "LaunchThrottled": alarm(
                "LaunchThrottled", throttled, 50, "RunTask is throttled or out of capacity"
            ),
            "DeadLetters": alarm(
                "DeadLetters", dead, 1, "events Record/Abort/Reconcile could not take"
            ),
            # A chat webhook that fails is told where it cannot be: on the topic (email).
            "NotificationsFailed": alarm(
                "NotificationsFailed", fanout_metric(metrics_names.NOTIFICATIONS_FAILED), 1,
                "a run's ending could not be posted to a webhook (Slack, Teams, generic)",
            ),
        }
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Runs",
                left=[
                    state_machine.metric_started(),
                    state_machine.metric_succeeded(),
                    state_machine.metric_failed(),
                    runs_failed,
                ],
            ),
            cloudwatch.GraphWidget(
                title="Items",
                left=[fanout_metric(metrics_names.ITEMS_SUCCEEDED), items_failed],
            ),
            cloudwatch.GraphWidget(
                title="Launch throttles and dead letters",
                left=[throttled, fanout_metric(metrics_names.ATTEMPTS_RECONCILED)],
                right=[dead],
            ),
        )
        self.dashboard.add_widgets(
            *[
                cloudwatch.AlarmWidget(title=title, alarm=made)
                for title, made in self.alarms.items()
            ]
        )
