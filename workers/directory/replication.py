"""What a domain controller says about replication, read through the directory port.

- :func:`invocation_id`: the identity the changes a DC originates carry when they
  replicate (its ``NTDS Settings`` object's ``invocationId``, found from the root DSE);
- :func:`up_to_dateness`: the domain's up-to-dateness vector on that DC
  (``replUpToDateVector`` on the domain head, MS-DRSR ``UPTODATE_VECTOR_V1/V2_EXT``): for
  each other DC's invocation ID, the USN up to which this DC holds every change that DC
  originated;
- :func:`usn_changed`: the USN a DC gave an object's last change.

Measured on Samba 4.17 (two DCs on loopback): a change originated on DC1 with USN ``u``
is on DC2 once DC2's vector holds at least ``u`` for DC1, about 3 s later; DC1's
``highestCommittedUSN`` also counts the changes it *received*, which DC2's vector for
DC1 never reaches, so only the USN of a change DC1 originated is a watermark to compare.
The fleet's account may read all three (no right is granted for them).
"""

from __future__ import annotations

import struct
import uuid

from workers.directory.port import Directory, DirectoryRefused

_HEADER = struct.Struct("<IIII")  # dwVersion, dwReserved1, cNumCursors, dwReserved2
_CURSOR_SIZES = {1: 24, 2: 32}  # UUID, USN (then the time of the last sync in V2)


def invocation_id(directory: Directory) -> str:
    """The invocation ID of the DC behind ``directory``, as text."""
    root = directory.read("", ["dsServiceName"])
    service = root.first("dsServiceName") if root else None
    settings = directory.read(str(service), ["invocationId"]) if service else None
    raw = settings.first("invocationId") if settings else None
    if raw is None:
        raise DirectoryRefused("noRootDSE", "the DC does not say who it is (root DSE)")
    return str(uuid.UUID(bytes_le=bytes(raw)))


def parse_up_to_dateness(blob: bytes) -> dict[str, int]:
    """``replUpToDateVector``'s value: invocation ID -> USN."""
    if len(blob) < _HEADER.size:
        raise ValueError(f"not an up-to-dateness vector ({len(blob)} bytes)")
    version, _, count, _ = _HEADER.unpack_from(blob, 0)
    size = _CURSOR_SIZES.get(version)
    if size is None or len(blob) < _HEADER.size + count * size:
        raise ValueError(f"not an up-to-dateness vector (version {version}, {len(blob)} bytes)")
    vector = {}
    for i in range(count):
        at = _HEADER.size + i * size
        (usn,) = struct.unpack_from("<q", blob, at + 16)
        vector[str(uuid.UUID(bytes_le=blob[at : at + 16]))] = usn
    return vector


def up_to_dateness(directory: Directory) -> dict[str, int]:
    entry = directory.read(directory.base_dn, ["replUpToDateVector"])
    raw = entry.first("replUpToDateVector") if entry else None
    return parse_up_to_dateness(bytes(raw)) if raw is not None else {}


def usn_changed(directory: Directory, dn: str) -> int | None:
    entry = directory.read(dn, ["uSNChanged"])
    value = entry.first("uSNChanged") if entry else None
    return int(value) if value is not None else None
