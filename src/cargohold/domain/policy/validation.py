"""The checks IAM makes on a policy document, in the order it makes them, with its messages.

The order matters because IAM reports the first fault it meets: the JSON grammar first ("Syntax
errors in policy."), then the Version, then its "legacy parser" (exact-case Effect, readable
dates, ARN shapes), then Sids, the principal fields the kind of policy requires or forbids,
actions and resources being present, the form of resources and actions, and the principals.
"""

from __future__ import annotations

import re
from typing import Final

from cargohold.domain.policy import errors
from cargohold.domain.policy.conditions import parse_date, parse_operator
from cargohold.domain.policy.errors import Malformed
from cargohold.domain.policy.kinds import PolicyKind
from cargohold.domain.policy.principals import (
    is_valid_aws_principal,
    is_valid_service_principal,
)

RawStatement = dict[str, object]

VERSIONS: Final = ("2012-10-17", "2008-10-17")
CURRENT_VERSION: Final = "2012-10-17"
_TOP_LEVEL: Final = frozenset({"Version", "Id", "Statement"})
_STATEMENT: Final = frozenset(
    {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction"}
    | {"Resource", "NotResource", "Condition"}
)
_PAIRS: Final = (
    ("Action", "NotAction"),
    ("Resource", "NotResource"),
    ("Principal", "NotPrincipal"),
)
_PRINCIPAL_TYPES: Final = frozenset({"AWS", "Service", "Federated", "CanonicalUser"})
_SID: Final = re.compile(r"[0-9A-Za-z]*")
_VENDOR_FORBIDDEN: Final = re.compile(r"[^a-zA-Z0-9\-.]")
_IAM_RESOURCE_PATHS: Final = (
    "user/", "federated-user/", "role/", "group/", "instance-profile/", "mfa/",
    "server-certificate/", "policy/", "sms-mfa/", "saml-provider/", "oidc-provider/",
    "report/", "access-report/",
)  # fmt: skip


def validate(document: object, kind: PolicyKind) -> list[RawStatement]:
    """The statements of a parsed JSON document, once it passes every check for its kind."""
    statements = _syntax(document)
    assert isinstance(document, dict)
    if kind.identity_based and document.get("Version") != CURRENT_VERSION:
        raise Malformed(errors.VERSION_TOO_OLD)
    resource_error = _legacy(statements)
    _sids(statements, unique=kind is not PolicyKind.REPOSITORY, alphanumeric=not kind.ecr)
    _principal_fields(statements, kind)
    for statement in statements:
        if not _values(statement, "Action", "NotAction"):
            raise Malformed(errors.NO_ACTIONS)
    if kind.needs_resources and not all(_values(s, "Resource", "NotResource") for s in statements):
        raise Malformed(errors.NO_RESOURCES)
    if resource_error is not None:
        raise Malformed(resource_error)
    for statement in statements:
        for action in _values(statement, "Action", "NotAction"):
            _check_action(action)
        _check_principals(statement)
    return statements


# -- the grammar -------------------------------------------------------------------------------


def _syntax(document: object) -> list[RawStatement]:
    if not isinstance(document, dict) or not set(document) <= _TOP_LEVEL:
        raise Malformed(errors.SYNTAX_ERRORS)
    if "Version" in document and document["Version"] not in VERSIONS:
        raise Malformed(errors.SYNTAX_ERRORS)
    if "Id" in document and not isinstance(document["Id"], str):
        raise Malformed(errors.SYNTAX_ERRORS)
    raw = document.get("Statement")
    statements = [raw] if isinstance(raw, dict) else raw
    if not isinstance(statements, list) or not statements:
        raise Malformed(errors.SYNTAX_ERRORS)
    for statement in statements:
        if not isinstance(statement, dict) or not _statement_syntax(statement):
            raise Malformed(errors.SYNTAX_ERRORS)
    return statements


def _statement_syntax(statement: RawStatement) -> bool:
    if not set(statement) <= _STATEMENT:
        return False
    if any(a in statement and b in statement for a, b in _PAIRS):
        return False
    effect = statement.get("Effect")
    if not isinstance(effect, str) or effect.lower() not in ("allow", "deny"):
        return False
    if "Sid" in statement and not isinstance(statement["Sid"], str):
        return False
    for name in ("Action", "NotAction", "Resource", "NotResource"):
        if name in statement and not _is_strings(statement[name]):
            return False
    principal = statement.get("Principal", statement.get("NotPrincipal", "*"))
    return _principal_syntax(principal) and _condition_syntax(statement.get("Condition", {}))


def _is_strings(value: object) -> bool:
    return isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    )


def _principal_syntax(principal: object) -> bool:
    if principal == "*":
        return True
    return (
        isinstance(principal, dict)
        and bool(principal)
        and set(principal) <= _PRINCIPAL_TYPES
        and all(_is_strings(v) for v in principal.values())
    )


def _condition_syntax(condition: object) -> bool:
    if not isinstance(condition, dict):
        return False
    for operator, block in condition.items():
        if not isinstance(block, dict):
            return False
        # An operator IAM does not know passes only with nothing under it.
        if parse_operator(operator) is None and block:
            return False
        if not all(_is_condition_values(v) for v in block.values()):
            return False
    return True


def _is_condition_values(value: object) -> bool:
    items = value if isinstance(value, list) else [value]
    return all(isinstance(item, str | bool | int | float) for item in items)


def condition_text(value: object) -> str:
    """A condition value as the string operators compare: JSON `true` is "true"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- the legacy parser --------------------------------------------------------------------------


def _legacy(statements: list[RawStatement]) -> str | None:
    """Checks that answer "The policy failed legacy parsing"; returns the resource-format fault
    (reported later, as IAM does) when there is one."""
    for statement in statements:
        if statement["Effect"] not in ("Allow", "Deny"):
            raise Malformed(errors.LEGACY_PARSING)
        _legacy_dates(statement.get("Condition", {}))
    resource_error: str | None = None
    for statement in statements:
        for name in ("Resource", "NotResource"):
            if name not in statement:
                continue
            values = _as_list(statement[name])
            # IAM looks at a list of resources in reverse order and reports the last fault.
            ordered = sorted(values, reverse=True) if isinstance(statement[name], list) else values
            for resource in ordered:
                resource_error = _resource_format_error(resource) or resource_error
            if resource_error is None and not all(_legacy_arn(r) for r in values):
                raise Malformed(errors.LEGACY_PARSING)
    return resource_error


def _legacy_dates(condition: object) -> None:
    assert isinstance(condition, dict)
    for name, block in condition.items():
        operator = parse_operator(name)
        if operator is None or not operator.base.startswith("Date"):
            continue
        for value in (v for values in block.values() for v in _as_list(values)):
            if parse_date(value) is None:
                raise Malformed(errors.LEGACY_PARSING)


def _legacy_arn(resource: str) -> bool:
    if resource == "*":
        return True
    fields = resource.split(":")
    return (len(fields) >= 6 or "::" not in resource) and len(fields) > 2 and fields[2] != ""


def _resource_format_error(resource: str) -> str | None:
    if resource == "*":
        return None
    _, colon, rest = resource.partition(":")
    if not colon:
        return errors.resource_not_arn(resource)
    partition, colon, rest = rest.partition(":")
    if partition != "aws":
        fields = rest.split(":") if colon else [""]
        shown = [fields[0] if fields[0] != "" or len(fields) > 1 else "*"]
        shown += [fields[i] if len(fields) > i else "*" for i in (1, 2)]
        shown.append(":".join(fields[3:]) if len(fields) > 3 else "*")
        arn = f"arn:{partition}:{':'.join(shown)}"
        return f'Partition "{partition}" is not valid for resource "{arn}".'
    if not colon:
        return errors.RESOURCE_VENDOR
    service, _, rest = rest.partition(":")
    if "*" in service or "?" in service:
        return errors.RESOURCE_VENDOR
    if service == "iam" and not rest.startswith(":"):
        return f"IAM resource {resource} cannot contain region information."
    if service == "s3" and not rest.startswith(":"):
        return f"Resource {resource} can not contain region information."
    if service == "iam":
        path = rest[1:].partition(":")[2]
        if not path.startswith(_IAM_RESOURCE_PATHS):
            return (
                'IAM resource path must either be "*" or start with '
                + ", ".join(_IAM_RESOURCE_PATHS)
                + "."
            )
    return None


# -- Sids, principals, actions -----------------------------------------------------------------


def _sids(statements: list[RawStatement], *, unique: bool, alphanumeric: bool) -> None:
    """IAM wants Sids unique within a document and alphanumeric; ECR takes any Sid, and a
    repository policy may repeat one (SetRepositoryPolicy accepts it)."""
    seen: set[str] = set()
    for statement in statements:
        sid = statement.get("Sid")
        if not unique or not isinstance(sid, str) or not sid:
            continue
        if sid in seen:
            raise Malformed(errors.SID_NOT_UNIQUE)
        seen.add(sid)
    if alphanumeric and not all(_SID.fullmatch(str(s.get("Sid", ""))) for s in statements):
        raise Malformed(errors.SID_NOT_ALPHANUMERIC)


def _principal_fields(statements: list[RawStatement], kind: PolicyKind) -> None:
    for statement in statements:
        names_principal = "Principal" in statement or "NotPrincipal" in statement
        if kind.identity_based and names_principal:
            raise Malformed(errors.SHOULD_NOT_SPECIFY_PRINCIPAL)
        if not kind.identity_based and not names_principal:
            raise Malformed(errors.MISSING_PRINCIPAL)
        if not kind.needs_resources:
            for name in ("Resource", "NotResource"):
                if name in statement:
                    raise Malformed(errors.prohibited_field(name))


def _check_action(action: str) -> None:
    parts = action.split(":")
    if len(parts) == 1 and parts[0] != "*":
        raise Malformed(errors.ACTION_WITHOUT_VENDOR)
    if len(parts) > 2:
        raise Malformed(errors.ACTION_COLONS)
    if parts[0] != "*" and _VENDOR_FORBIDDEN.search(parts[0]):
        raise Malformed(errors.vendor_not_valid(parts[0]))


def _check_principals(statement: RawStatement) -> None:
    principal = statement.get("Principal", statement.get("NotPrincipal", "*"))
    if not isinstance(principal, dict):
        return
    for value in _as_list(principal.get("AWS", [])):
        if not is_valid_aws_principal(value):
            raise Malformed(errors.invalid_principal("AWS", value))
    for value in _as_list(principal.get("Service", [])):
        if not is_valid_service_principal(value):
            raise Malformed(errors.invalid_principal("Service", value))
    for name in ("Federated", "CanonicalUser"):
        for value in _as_list(principal.get(name, [])):
            if not value or "*" in value:
                raise Malformed(errors.invalid_principal(name, value))


def _values(statement: RawStatement, *names: str) -> list[str]:
    for name in names:
        if name in statement:
            return _as_list(statement[name])
    return []


def _as_list(value: object) -> list[str]:
    if isinstance(value, list):
        return [condition_text(v) for v in value]
    return [condition_text(value)]
