"""IAM policies: the language (documents, conditions, matching) and the decision it leads to.

Pure values and rules: parsing and validating a document as IAM and ECR do (`parse_policy`),
and evaluating a request against identity-based and resource-based policies (`evaluate`).
"""

from cargohold.domain.policy.conditions import Condition, Operator
from cargohold.domain.policy.context import (
    global_context,
    request_tag_context,
    resource_tag_context,
)
from cargohold.domain.policy.document import ALLOW, DENY, Effect, Policy, Statement, parse_policy
from cargohold.domain.policy.errors import (
    INVALID_PARAMETER,
    LIMIT_EXCEEDED,
    MALFORMED_POLICY_DOCUMENT,
    PolicyError,
)
from cargohold.domain.policy.evaluation import (
    AuthorizationRequest,
    Context,
    Denial,
    PolicyDecision,
    evaluate,
    normalize_context,
)
from cargohold.domain.policy.kinds import (
    ECR_POLICY_SIZE,
    INLINE_POLICY_SIZE,
    MANAGED_POLICY_SIZE,
    TRUST_POLICY_SIZE,
    PolicyKind,
    check_inline_size,
    policy_size,
)
from cargohold.domain.policy.principals import Caller, CallerKind, Principals

__all__ = [
    "ALLOW",
    "DENY",
    "ECR_POLICY_SIZE",
    "INLINE_POLICY_SIZE",
    "INVALID_PARAMETER",
    "LIMIT_EXCEEDED",
    "MALFORMED_POLICY_DOCUMENT",
    "MANAGED_POLICY_SIZE",
    "TRUST_POLICY_SIZE",
    "AuthorizationRequest",
    "Caller",
    "CallerKind",
    "Condition",
    "Context",
    "Denial",
    "Effect",
    "Operator",
    "Policy",
    "PolicyDecision",
    "PolicyError",
    "PolicyKind",
    "Principals",
    "Statement",
    "check_inline_size",
    "evaluate",
    "global_context",
    "normalize_context",
    "parse_policy",
    "policy_size",
    "request_tag_context",
    "resource_tag_context",
]
