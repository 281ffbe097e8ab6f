"""Dated AWS list prices (us-east-1) the cost benchmark uses, each with where it was read.

Figures are as published on the named page, retrieved from a stored copy of it on the
date below. A price not found in any stored page is ``None`` and is reported as such.
"""

from __future__ import annotations

from typing import Any

RETRIEVED = "2026-11-21"

PRICES: dict[str, dict[str, Any]] = {
    "sfn_transition": {
        "usd": 0.025 / 1000, "unit": "state transition (Standard)",
        "source": "https://aws.amazon.com/step-functions/pricing/",
        "note": "$0.0250 per 1,000 state transitions, US East (N. Virginia); retries count",
    },
    "lambda_request": {
        "usd": 0.20 / 1_000_000, "unit": "request",
        "source": "https://cloudchipr.com/blog/aws-lambda-pricing (third-party page; the "
                  "stored aws.amazon.com/lambda/pricing copy shows no figures)",
        "note": "$0.20 per 1M requests (x86 and Arm)",
    },
    "lambda_gb_second_arm": {
        "usd": 0.0000133334, "unit": "GB-second (arm64, first 7.5 billion GB-s/month)",
        "source": "https://cloudchipr.com/blog/aws-lambda-pricing (third-party page)",
        "note": "Arm: $0.0000133334 per GB-second, US East (N. Virginia)",
    },
    "ddb_write_request_unit": {
        "usd": 0.625 / 1_000_000, "unit": "on-demand write request unit",
        "source": "https://airbyte.com/data-engineering-resources/dynamodb-pricing "
                  "(third-party page; AWS's on-demand page was not in the stored copies)",
        "note": "$0.625 per million WRU, US East (after AWS's Nov 2024 on-demand price cut)",
    },
    "ddb_read_request_unit": {
        "usd": 0.125 / 1_000_000, "unit": "on-demand read request unit",
        "source": "https://airbyte.com/data-engineering-resources/dynamodb-pricing "
                  "(third-party page)",
        "note": "$0.125 per million RRU, US East",
    },
    "eventbridge_aws_service_event": {
        "usd": 0.0, "unit": "AWS service event on the default bus (ECS, Step Functions)",
        "source": "https://blog.awsfundamentals.com/aws-eventbridge-pricing-guide and "
                  "https://www.wring.co/blog/aws-eventbridge-pricing-guide (third-party pages)",
        "note": "AWS service events are free; custom events $1.00 per million",
    },
    "s3_request": {
        "usd": None, "unit": "S3 Standard PUT/GET request",
        "source": "not found: no stored copy of aws.amazon.com/s3/pricing gave request prices",
        "note": "requests are counted, not priced",
    },
}

ALTERNATIVES: list[dict[str, str]] = [
    {
        "name": "Airflow on MWAA (mw1.small, the smallest standard class)",
        "figure": "about $0.49 per environment-hour (about $358/month), billed while the "
                  "environment exists, whether or not DAGs run; extra workers about "
                  "$0.055/hour",
        "source": "https://c3x.dev/blog/mwaa-cost-managed-airflow/ and "
                  "https://awsi.click/en/articles/mwaa-airflow-orchestration/ (third-party "
                  "pages; AWS's MWAA pricing page was not in the stored copies)",
    },
    {
        "name": "AWS Batch array jobs on Fargate",
        "figure": "no charge for Batch itself; you pay for the Fargate (or EC2) compute it "
                  "runs",
        "source": "https://handbook.vantage.sh/aws/services/batch-pricing/ (third-party page)",
    },
    {
        "name": "Hand-built Distributed Map with ecs:runTask.sync",
        "figure": "Step Functions Standard at $0.025 per 1,000 state transitions (each child "
                  "execution's states, retries included) plus Fargate; no Lambda or "
                  "DynamoDB, and no per-attempt records",
        "source": "https://aws.amazon.com/step-functions/pricing/",
    },
]
