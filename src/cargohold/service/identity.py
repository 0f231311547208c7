"""Users, access keys and the credentials built on them: the operations the admin CLI, the
fronts and the IAM API share, for one registry account.

`IdentityService` is both faces of the account's identities:

- administration (`cargohold.service.identity_admin.IdentityAdmin`): users, their access keys,
  and the registry's administrator;
- authentication (`cargohold.service.authentication.Authentication`): SigV4 access keys and
  session tokens to a secret and a principal, and `/v2/` registry tokens.

The records both hand out, the master key's file and the id and secret generators are in
`cargohold.service.credentials`, and are importable from here too.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cargohold.auth.secretbox import SecretBox
from cargohold.auth.tokens import TokenSigner
from cargohold.ports import Metadata
from cargohold.service.authentication import Authentication
from cargohold.service.credentials import (
    KEY_USE_RESOLUTION,
    MASTER_KEY_FILE,
    TOKEN_KEY_PURPOSE,
    AdministratorKey,
    KeyCredential,
    NewAccessKey,
    new_secret,
    no_such_key,
    random_id,
    refuse_deletion,
    session_principal,
    session_token_context,
)
from cargohold.service.identity_admin import IdentityAdmin

__all__ = [
    "KEY_USE_RESOLUTION",
    "MASTER_KEY_FILE",
    "TOKEN_KEY_PURPOSE",
    "AdministratorKey",
    "IdentityService",
    "KeyCredential",
    "NewAccessKey",
    "new_secret",
    "no_such_key",
    "random_id",
    "refuse_deletion",
    "session_principal",
    "session_token_context",
]


class IdentityService(IdentityAdmin, Authentication):
    """Identities of one registry account, over the metadata store and the secret box."""

    def __init__(
        self,
        store: Metadata,
        box: SecretBox,
        tokens: TokenSigner,
        clock: Callable[[], float],
        *,
        account_id: str,
        region: str,
    ) -> None:
        IdentityAdmin.__init__(self, store, box, clock, account_id=account_id, region=region)
        Authentication.__init__(self, store, box, tokens, clock)

    @classmethod
    def from_data_dir(
        cls,
        store: Metadata,
        data_path: Path,
        clock: Callable[[], float],
        *,
        account_id: str,
        region: str,
    ) -> IdentityService:
        """Keyed by `<data_path>/master.key`, created (0600) on first use."""
        box = SecretBox.from_key_file(data_path / MASTER_KEY_FILE)
        signer = TokenSigner(box.derive_key(TOKEN_KEY_PURPOSE))
        return cls(store, box, signer, clock, account_id=account_id, region=region)

    def for_account(self, account_id: str) -> IdentityService:
        """The same service for another account on this server (the caller's, in IAM calls)."""
        if account_id == self.account_id:
            return self
        return IdentityService(
            self._store,
            self._box,
            self._tokens,
            self._clock,
            account_id=account_id,
            region=self.region,
        )
