"""ECR's opaque page tokens: they round-trip, and one made for another operation or repository,
or not made here at all, is refused with ECR's message."""

from __future__ import annotations

import pytest

from cargohold.domain.errors import InvalidParameter
from cargohold.service.tokens import decode_token, encode_token


def test_a_token_round_trips() -> None:
    token = encode_token("ListImages", 7, [3, "v1"])
    assert "=" not in token
    assert decode_token(token, "ListImages", 7) == [3, "v1"]


@pytest.mark.parametrize(
    ("token", "operation", "repository"),
    [
        (encode_token("ListImages", 7, [1]), "DescribeImages", 7),
        (encode_token("ListImages", 7, [1]), "ListImages", 8),
        ("not base64!", "ListImages", 7),
        ("e30", "ListImages", 7),  # {}
        ("W10", "ListImages", 7),  # []
    ],
)
def test_a_foreign_token_is_refused(token: str, operation: str, repository: int) -> None:
    with pytest.raises(InvalidParameter, match="'Invalid NextToken'"):
        decode_token(token, operation, repository)
