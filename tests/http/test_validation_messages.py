"""How constraint violations are worded: AWS's validation message, and ECR's own."""

from __future__ import annotations

import pytest

from cargohold.http.awsjson import validate_input
from cargohold.http.awsservice import ValidationFailed, Violation, service_model
from cargohold.http.ecr_errors import ecr_invalid

ECR = service_model("ecr")


def failure(operation: str, **params: object) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        validate_input(ECR.operation_model(operation), params)
    return caught.value


def test_an_operation_without_validation_exception_answers_invalid_parameter() -> None:
    error = ecr_invalid(failure("CreateRepository", repositoryName="x" * 300), ECR)
    assert (error.code, error.status) == ("InvalidParameterException", 400)
    assert error.message == (
        "Invalid parameter at 'repositoryName' failed to satisfy constraint: "
        "'must have length less than or equal to 256'"
    )
    error = ecr_invalid(failure("BatchDeleteImage", repositoryName="app"), ECR)
    assert error.message == (
        "Invalid parameter at 'imageIds' failed to satisfy constraint: 'Member must not be null'"
    )


def test_an_operation_that_lists_validation_exception_answers_it() -> None:
    caught = failure("PutRegistryScanningConfiguration", scanType="SOMETIMES")
    error = ecr_invalid(caught, ECR)
    assert error.code == "ValidationException"
    assert error.message == (
        "1 validation error detected: Value 'SOMETIMES' at 'scanType' failed to satisfy "
        "constraint: Member must satisfy enum value set: [BASIC, ENHANCED]"
    )


def test_a_message_names_at_most_a_hundred_violations() -> None:
    violations = [
        Violation(f"tags.{i}.member", "Member must not be null", None, "null") for i in range(5000)
    ]
    caught = ValidationFailed(violations, "TagResource")
    assert caught.message.startswith("5000 validation errors detected: Value null at 'tags.0")
    assert caught.message.count("Value null") == 100
