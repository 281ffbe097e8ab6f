"""fanout: run one container many times in parallel on AWS Fargate."""
