"""The worker's keys: the fleet's private key (to open sealed passwords at the moment of the
directory write) and the results consumer's public key (to seal generated passwords)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nacl.public import PrivateKey, PublicKey

from messages import sealing
from workers.errors import PermanentError
from workers.realm import Realm
from workers.settings import Settings
from workers.steps import Context, job_tag


@dataclass(frozen=True)
class KeyRing:
    fleet_private: PrivateKey | None
    results_public: PublicKey | None

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        return cls(
            fleet_private=(
                sealing.load_private_key(settings.fleet_private_key_file)
                if settings.fleet_private_key_file
                else None
            ),
            results_public=(
                sealing.load_public_key(settings.results_public_key_file)
                if settings.results_public_key_file
                else None
            ),
        )

    def unseal(self, sealed: bytes, path: str) -> str:
        if self.fleet_private is None:
            raise PermanentError(
                "no_fleet_key", "a sealed password needs PROVISIONER_FLEET_PRIVATE_KEY_FILE"
            )
        return sealing.unseal(sealed, self.fleet_private, path)

    def _results_sealer(self) -> Callable[[str], bytes] | None:
        key = self.results_public
        if key is None:
            return None
        return lambda plaintext: sealing.seal(plaintext, key)

    def context(self, realm: Realm, idempotency_key: str, sam_digits: int) -> Context:
        return Context(
            realm=realm,
            tag=job_tag(idempotency_key),
            unseal=self.unseal,
            seal_for_results=self._results_sealer(),
            sam_digits=sam_digits,
        )
