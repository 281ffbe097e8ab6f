"""Where tasks run: a VPC with public subnets and no NAT (or the config's subnets)."""

from __future__ import annotations

from aws_cdk import Fn, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from fanout.config import NetworkConfig


class Network(Construct):
    """The subnets tasks launch into and their security group (egress only)."""

    def __init__(
        self, scope: Construct, id: str, *, config: NetworkConfig, log_retention: logs.RetentionDays
    ) -> None:
        super().__init__(scope, id)
        if config.uses_existing:
            assert config.vpc_id is not None
            self.vpc: ec2.IVpc = ec2.Vpc.from_vpc_attributes(
                self,
                "Vpc",
                vpc_id=config.vpc_id,
                availability_zones=[
                    Fn.select(i, Fn.get_azs()) for i in range(len(config.subnet_ids))
                ],
                public_subnet_ids=list(config.subnet_ids),
            )
            self.subnet_ids: list[str] = list(config.subnet_ids)
        else:
            vpc = ec2.Vpc(
                self,
                "Vpc",
                max_azs=config.max_azs,
                nat_gateways=0,
                subnet_configuration=[
                    ec2.SubnetConfiguration(
                        name="tasks", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=20
                    )
                ],
                enable_dns_hostnames=True,
                enable_dns_support=True,
            )
            self.flow_log_group = logs.LogGroup(
                self, "FlowLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY
            )
            vpc.add_flow_log(
                "FlowLog",
                destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_log_group),
                traffic_type=ec2.FlowLogTrafficType.REJECT,
            )
            self.vpc = vpc
            self.subnet_ids = [s.subnet_id for s in vpc.public_subnets]
        # Tasks only reach out (ECR, S3, logs); nothing reaches in.
        self.security_group = ec2.SecurityGroup(
            self,
            "TaskSecurityGroup",
            vpc=self.vpc,
            description="fanout tasks: egress only, no ingress",
            allow_all_outbound=True,
        )
        self.assign_public_ip = config.assign_public_ip
