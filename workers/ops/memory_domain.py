"""A whole domain in memory, bootstrapped the way the platform bootstraps a real one: for
the unit tests of the delivery layer and the engine, and the pipeline benchmark.

It holds what a freshly provisioned domain holds that the fleet touches (the domain head,
``CN=Users`` with the fleet's own plain account, ``CN=System`` and its Password Settings
Container, the configuration's Directory Service object), and then the real
:func:`workers.ops.bootstrap.bootstrap` runs against it, so the worker's preflight passes
for the same reasons it passes on a DC.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.directory.memory import MemoryDirectory
from workers.ops import bootstrap
from workers.provisioning import names, security
from workers.provisioning.realm import Realm, read_realm

BASE_DN = "DC=hosting,DC=test"
DOMAIN_SID = "S-1-5-21-1000000000-2000000000-3000000000"
FLEET_ACCOUNT = "svc-provisioner"


@dataclass(frozen=True)
class MemoryDomain:
    directory: MemoryDirectory
    realm: Realm


def memory_domain(base_dn: str = BASE_DN, domain_sid: str = DOMAIN_SID) -> MemoryDomain:
    """A bootstrapped domain in memory, and its realm as the fleet's account sees it."""
    directory = MemoryDirectory(
        base_dn,
        domain_sid,
        default_descriptor=security.encode(security.Dacl(protected=False, aces=())),
    )
    users = f"CN=Users,{base_dn}"
    fleet = f"CN={FLEET_ACCOUNT},{users}"
    configuration = directory.configuration_nc
    for dn, classes in (
        (users, ["container"]),
        (f"CN=System,{base_dn}", ["container"]),
        (names.password_settings_dn(base_dn), ["msDS-PasswordSettingsContainer"]),
        (configuration, ["configuration"]),
        (f"CN=Services,{configuration}", ["container"]),
        (f"CN=Windows NT,CN=Services,{configuration}", ["container"]),
        (names.directory_service_dn(configuration), ["nTDSService"]),
    ):
        directory.add(dn, classes, {})
    directory.add(
        fleet,
        ["top", "person", "organizationalPerson", "user"],
        {"sAMAccountName": FLEET_ACCOUNT, "userAccountControl": 512},
    )
    realm = read_realm(directory, fleet)
    bootstrap.bootstrap(directory, realm)
    return MemoryDomain(directory, realm)
