"""Authentication errors: what a caller is told when cargohold cannot establish who is calling.

The hierarchy, drawn once::

    Exception
    ├── AuthError                      SigV4-signed APIs (ECR, STS, IAM); carries the AWS ``__type``
    │   ├── MissingAuthenticationToken     no signature at all                         403
    │   ├── IncompleteSignature            a malformed Authorization header / query    400
    │   ├── UnrecognizedClient             unknown or inactive access key              400
    │   ├── InvalidSignature               signature does not match                    400
    │   │   └── SignatureExpired           signed more than 15 minutes from now        400
    │   ├── RequestExpired                 presigned URL past its X-Amz-Expires        400
    │   └── ExpiredToken                   session token past its expiry               400
    ├── RegistryTokenError             ``/v2/`` Basic credentials; carries an OCI error code
    │   ├── TokenInvalid                   malformed, forged or tampered token         401
    │   └── TokenExpired                   token older than its 12 hours               401
    └── SecretBoxError                 a secret at rest cannot be decrypted, or the key is unusable

``aws_type`` and the messages are the ones AWS JSON-protocol services (ECR) return, so SDKs and the
CLI show their users the same text. The query-protocol fronts (STS, IAM) spell some of them
differently on the wire (``InvalidClientTokenId``, ``SignatureDoesNotMatch``) and map them in their
own error tables.

No message ever contains a secret, a signature, a token, or client input that has not first
been validated as harmless (a well-formed timestamp, an algorithm name).
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AuthError",
    "ExpiredToken",
    "IncompleteSignature",
    "InvalidSignature",
    "MissingAuthenticationToken",
    "RegistryTokenError",
    "RequestExpired",
    "SecretBoxError",
    "SignatureExpired",
    "TokenExpired",
    "TokenInvalid",
    "UnrecognizedClient",
]


class AuthError(Exception):
    """A SigV4-signed request could not be authenticated.

    ``aws_type`` goes to the wire as ``__type``; ``message`` as ``message``; ``http_status`` is the
    status AWS answers with.
    """

    aws_type: ClassVar[str] = "AccessDeniedException"
    default_message: ClassVar[str] = "Access denied"
    http_status: ClassVar[int] = 400

    def __init__(self, message: str | None = None) -> None:
        self.message: str = self.default_message if message is None else message
        super().__init__(self.message)


class MissingAuthenticationToken(AuthError):
    aws_type = "MissingAuthenticationTokenException"
    default_message = "Missing Authentication Token"
    http_status = 403


class IncompleteSignature(AuthError):
    aws_type = "IncompleteSignatureException"
    default_message = "The request signature does not conform to AWS standards."


class UnrecognizedClient(AuthError):
    aws_type = "UnrecognizedClientException"
    default_message = "The security token included in the request is invalid."


class InvalidSignature(AuthError):
    aws_type = "InvalidSignatureException"
    default_message = (
        "The request signature we calculated does not match the signature you provided. "
        "Check your AWS Secret Access Key and signing method. "
        "Consult the service documentation for details."
    )


class SignatureExpired(InvalidSignature):
    """The request was signed too long ago, or too far in the future (clock skew).

    AWS JSON services report this as ``InvalidSignatureException`` whose message starts with
    ``Signature expired:`` or ``Signature not yet current:``; SDKs recognise those prefixes as
    clock-skew errors and correct their clock, so the message format matters.
    """

    default_message = "Signature expired"


class RequestExpired(AuthError):
    """A presigned (query-string) request used after its ``X-Amz-Expires`` window."""

    aws_type = "RequestExpired"
    default_message = "Request has expired."


class ExpiredToken(AuthError):
    aws_type = "ExpiredTokenException"
    default_message = "The security token included in the request is expired"


class RegistryTokenError(Exception):
    """``/v2/`` Basic credentials were rejected.

    ``oci_code`` is the OCI distribution error code for the ``errors`` body; ``http_status`` is
    401 so that ``podman login`` / ``docker login`` report bad credentials rather than a failure.
    """

    oci_code: ClassVar[str] = "UNAUTHORIZED"
    default_message: ClassVar[str] = "authentication required"
    http_status: ClassVar[int] = 401

    def __init__(self, message: str | None = None) -> None:
        self.message: str = self.default_message if message is None else message
        super().__init__(self.message)


class TokenInvalid(RegistryTokenError):
    oci_code = "DENIED"
    default_message = "Your Authorization Token is invalid."


class TokenExpired(RegistryTokenError):
    oci_code = "DENIED"
    default_message = "Your authorization token has expired. Reauthenticate and try again."


class SecretBoxError(Exception):
    """A ciphertext failed authentication (tampered, truncated, other key) or a key is unusable."""
