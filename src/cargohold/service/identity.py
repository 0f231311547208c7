"""Both faces of one account's identities, for the admin CLI and for whatever needs both:

- administration (`cargohold.service.identity_admin.IdentityAdmin`): users, their access keys,
  and the registry's administrator;
- authentication (`cargohold.service.authentication.Authentication`): SigV4 access keys and
  session tokens to a secret and a principal, and `/v2/` registry tokens.

The records both hand out, the master key's file and the id and secret generators are in
`cargohold.service.credentials`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cargohold.auth.secretbox import SecretBox
from cargohold.auth.tokens import TokenSigner
from cargohold.ports import Metadata
from cargohold.service.authentication import Authentication
from cargohold.service.credentials import MASTER_KEY_FILE, TOKEN_KEY_PURPOSE
from cargohold.service.identity_admin import IdentityAdmin


@dataclass(frozen=True, slots=True)
class Identities:
    """The administration and the authentication of one account's identities, sealed by one
    secret box."""

    admin: IdentityAdmin
    authentication: Authentication

    @classmethod
    def sealed_by(
        cls,
        store: Metadata,
        box: SecretBox,
        clock: Callable[[], float],
        *,
        account_id: str,
        region: str,
    ) -> Identities:
        """Both faces over `store`, their secrets sealed and their `/v2/` tokens signed with
        keys of `box`."""
        return cls(
            IdentityAdmin(store, box, clock, account_id=account_id, region=region),
            Authentication(store, box, TokenSigner(box.derive_key(TOKEN_KEY_PURPOSE)), clock),
        )

    @classmethod
    def from_data_dir(
        cls,
        store: Metadata,
        data_path: Path,
        clock: Callable[[], float],
        *,
        account_id: str,
        region: str,
    ) -> Identities:
        """Keyed by `<data_path>/master.key`, created (0600) on first use."""
        box = SecretBox.from_key_file(data_path / MASTER_KEY_FILE)
        return cls.sealed_by(store, box, clock, account_id=account_id, region=region)
