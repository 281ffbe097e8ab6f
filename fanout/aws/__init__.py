"""boto3 adapters: clients, ECS, Step Functions callbacks, the S3 manifest. Never import runtime."""
