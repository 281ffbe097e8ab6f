"""The team dashboard's part of the config: ``fanout.dashboard`` (docs/ui.md, decision 0019)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from fanout.errors import described
from fanout.policy import Count, Flag, Frozen

#: A Cognito hosted UI domain prefix (lowercase letters, digits and hyphens, 1..63).
DOMAIN_PREFIX = described(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$",
                          "lowercase letters, digits and '-', 1 to 63 long, not starting or "
                          "ending with '-'")


class DashboardConfig(Frozen):
    """``fanout ui`` deployed with the stack, behind Cognito sign-in (viewers, operators)."""

    enabled: Flag = False
    #: The sign-in page's domain prefix (https://PREFIX.auth.REGION.amazoncognito.com),
    #: unique in the region; unset: the stack name and the account id.
    domain_prefix: str | None = Field(default=None, pattern=DOMAIN_PREFIX)
    #: TOTP multi-factor authentication: required (default) or optional for the users.
    mfa: Literal["required", "optional"] = "required"
    #: How long a sign-in lasts (the ID token's validity): 5 minutes to 1 day.
    session_minutes: Count = Field(default=480, ge=5, le=1440)
    #: Requests per second the API accepts (a steady rate; bursts up to 2.5 times it).
    requests_per_second: Count = Field(default=20, ge=1, le=10_000)

    @field_validator("domain_prefix")
    @classmethod
    def _no_reserved_words(cls, value: str | None) -> str | None:
        if value and any(word in value for word in ("aws", "amazon", "cognito")):
            raise ValueError("Cognito refuses a domain prefix containing aws, amazon or "
                             "cognito")
        return value
