"""What a rejected policy document answers: the error code and message AWS gives for it.

IAM answers `MalformedPolicyDocument` with a message that names the fault ("Syntax errors in
policy.", "Policy document should not specify a principal.", …) and `LimitExceeded` for size.
ECR says less: SetRepositoryPolicy and PutRegistryPolicy answer `InvalidParameterException` with
one message whatever the fault; `PolicyError.reason` keeps IAM's precise words for the log.
"""

from __future__ import annotations

from typing import Final

from cargohold.domain.errors import RegistryError

MALFORMED_POLICY_DOCUMENT: Final = "MalformedPolicyDocument"
LIMIT_EXCEEDED: Final = "LimitExceeded"
INVALID_PARAMETER: Final = "InvalidParameterException"

# IAM's messages, word for word.
SYNTAX_ERRORS: Final = "Syntax errors in policy."
VERSION_TOO_OLD: Final = "Policy document must be version 2012-10-17 or greater."
LEGACY_PARSING: Final = "The policy failed legacy parsing"
SID_NOT_UNIQUE: Final = "Statement IDs (SID) in a single policy must be unique."
SID_NOT_ALPHANUMERIC: Final = (
    "Statement IDs (SID) must be alpha-numeric. "
    "Check that your input satisfies the regular expression [0-9A-Za-z]*"
)
NO_ACTIONS: Final = "Policy statement must contain actions."
NO_RESOURCES: Final = "Policy statement must contain resources."
SHOULD_NOT_SPECIFY_PRINCIPAL: Final = "Policy document should not specify a principal."
MISSING_PRINCIPAL: Final = "Missing required field Principal"
ACTION_WITHOUT_VENDOR: Final = (
    "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
)
ACTION_COLONS: Final = "Actions/Condition can contain only one colon."
RESOURCE_VENDOR: Final = "Resource vendor must be fully qualified and cannot contain regexes."

# ECR's messages for SetRepositoryPolicy and PutRegistryPolicy.
INVALID_REPOSITORY_POLICY: Final = (
    "Invalid parameter at 'PolicyText' failed to satisfy constraint: "
    "'Invalid repository policy provided'"
)
INVALID_REGISTRY_POLICY: Final = (
    "Invalid parameter at 'PolicyText' failed to satisfy constraint: "
    "'Invalid registry policy provided'"
)


def prohibited_field(name: str) -> str:
    return f"Has prohibited field {name}"


def invalid_principal(kind: str, value: str) -> str:
    return f'Invalid principal in policy: "{kind}":"{value}"'


def vendor_not_valid(vendor: str) -> str:
    return f"Vendor {vendor} is not valid"


def resource_not_arn(resource: str) -> str:
    return f'Resource {resource} must be in ARN format or "*".'


class PolicyError(RegistryError):
    """A policy document AWS would refuse.

    `code` is the error code the front answers with (`MalformedPolicyDocument`, `LimitExceeded`
    or `InvalidParameterException`), `message` its text; `reason` is IAM's account of the fault
    even where the wire message says less.
    """

    def __init__(self, code: str, message: str, *, reason: str | None = None) -> None:
        super().__init__(message, detail=reason or message)
        self.code = code
        self.reason = reason or message


class Malformed(Exception):
    """Raised inside parsing with IAM's words; `parse_policy` turns it into a `PolicyError`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
