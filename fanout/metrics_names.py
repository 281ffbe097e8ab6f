"""Names of the CloudWatch metrics the functions emit and the stack's alarms watch.

The handlers emit them with Powertools Metrics (namespace :data:`NAMESPACE`, default
dimension ``service`` = :data:`SERVICE`, which the stack sets as
``POWERTOOLS_SERVICE_NAME`` / ``POWERTOOLS_METRICS_NAMESPACE`` on every function).
"""

from __future__ import annotations

NAMESPACE = "Fanout"
SERVICE = "fanout"

#: Finalize: a run ended FAILED (count 1 per run).
RUNS_FAILED = "RunsFailed"
#: Finalize: a run ended SUCCEEDED.
RUNS_SUCCEEDED = "RunsSucceeded"
#: Record: an item reached a final failure (FAILED, TIMED_OUT).
ITEMS_FAILED = "ItemsFailed"
#: Record: an item succeeded.
ITEMS_SUCCEEDED = "ItemsSucceeded"
#: Launch/Dispatch: RunTask was throttled or had no capacity (the item waits on).
LAUNCH_THROTTLED = "LaunchThrottled"
#: Dispatch: tasks started from the launch queue.
LAUNCHED = "Launched"
#: Reconcile: attempts settled from DescribeTasks because their STOPPED event never came.
ATTEMPTS_RECONCILED = "AttemptsReconciled"
#: Finalize/Abort: a run's ending could not be posted to a webhook (Slack, Teams, generic).
NOTIFICATIONS_FAILED = "NotificationsFailed"
