"""The ARNs IAM needs for the secrets and parameters the config names."""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack

#: Secrets Manager ends every secret's ARN with '-' and six random characters.
SECRET_SUFFIX = "-??????"


def secret_arn(stack: Stack, ref: str) -> str:
    """The ARN a policy names for a Secrets Manager secret given by name or full ARN: a name
    matches its secret's ARN with any random suffix (and no other secret's)."""
    if ref.startswith("arn:"):
        return ref
    return stack.format_arn(service="secretsmanager", resource="secret",
                            resource_name=f"{ref}{SECRET_SUFFIX}",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME)


def parameter_arn(stack: Stack, ref: str) -> str:
    """The ARN of an SSM parameter given by name (``/a/b`` or ``a``) or full ARN."""
    if ref.startswith("arn:"):
        return ref
    return stack.format_arn(service="ssm", resource="parameter",
                            resource_name=ref.lstrip("/"),
                            arn_format=ArnFormat.SLASH_RESOURCE_NAME)
