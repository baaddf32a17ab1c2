"""The worker's keys: the fleet's key ring (to open sealed passwords at the moment of the
directory write: the current key and previous ones, see :mod:`workers.runtime.key_ring`) and the
results consumer's public key (to seal generated passwords)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nacl.public import PublicKey

from messages import sealing
from messages.errors import ContractError
from workers.errors import PermanentError
from workers.provisioning.realm import Realm
from workers.provisioning.steps import Context, job_tag
from workers.runtime import key_ring
from workers.runtime.settings import Settings


@dataclass(frozen=True)
class KeyRing:
    fleet: key_ring.KeyRing | None
    results_public: PublicKey | None

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        return cls(
            fleet=key_ring.KeyRing.load(settings.fleet_key_dir) if settings.fleet_key_dir else None,
            results_public=(
                sealing.load_public_key(settings.results_public_key_file)
                if settings.results_public_key_file
                else None
            ),
        )

    def unseal(self, sealed: bytes, path: str) -> str:
        if self.fleet is None:
            raise PermanentError(
                "no_fleet_key", "a sealed password needs PROVISIONER_FLEET_KEY_DIR"
            )
        ring = self.fleet.refreshed()  # a key rotated or retired meanwhile counts now
        opened = ring.open(sealed)
        if opened is not None:
            try:
                return opened.plaintext.decode("utf-8")
            except UnicodeDecodeError:
                raise ContractError(
                    sealing.UNSEAL_ERROR, "the sealed password is not UTF-8", path
                ) from None
        retired = ring.retired_key_of(sealed)
        if retired is not None:
            raise PermanentError(
                "retired_key",
                f"{path} is sealed to the fleet key {retired}, which is retired: seal it "
                "again to the current key (PROVISIONER_FLEET_PUBLIC_KEY_FILE) and publish anew",
            )
        raise ContractError(
            sealing.UNSEAL_ERROR, "the sealed password does not open with the fleet's keys", path
        )

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
