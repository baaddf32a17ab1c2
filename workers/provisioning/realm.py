"""The facts about the domain that plans are made of, read once per connection."""

from __future__ import annotations

from dataclasses import dataclass

from workers.directory.port import Directory, DirectoryRefused
from workers.provisioning.security import sid_from_bytes


@dataclass(frozen=True)
class Realm:
    base_dn: str
    domain_sid: str
    provisioner_dn: str
    provisioner_sid: str


def read_sid(directory: Directory, dn: str) -> str:
    entry = directory.read(dn, ["objectSid"])
    value = entry.first("objectSid") if entry else None
    if not isinstance(value, bytes):
        raise DirectoryRefused("noSuchObject", f"{dn} has no objectSid")
    return sid_from_bytes(value)


def read_realm(directory: Directory, provisioner_dn: str) -> Realm:
    return Realm(
        base_dn=directory.base_dn,
        domain_sid=read_sid(directory, directory.base_dn),
        provisioner_dn=provisioner_dn,
        provisioner_sid=read_sid(directory, provisioner_dn),
    )
