"""Provisioning steps: each checks, then ensures, and knows how to undo what it did."""

from workers.provisioning.steps.base import TAG_ATTRIBUTE, Applied, Context, Step, job_tag, tag_of
from workers.provisioning.steps.entries import CreateEntry, DeleteEntry, ReplaceAttributes
from workers.provisioning.steps.groups import EnsureMembers, EnsureNotMembers
from workers.provisioning.steps.lockdown import ProtectTenantOu, SetObjectDacl
from workers.provisioning.steps.quota import ReleaseSlot, ReserveSlot
from workers.provisioning.steps.users import (
    ACCOUNT_DISABLED,
    NORMAL_ACCOUNT,
    CreateUser,
    SetAccountEnabled,
    SetPassword,
)

GLOBAL_SECURITY_GROUP = -2147483646  # ADS_GROUP_TYPE_GLOBAL_GROUP | SECURITY_ENABLED

__all__ = [
    "ACCOUNT_DISABLED",
    "GLOBAL_SECURITY_GROUP",
    "NORMAL_ACCOUNT",
    "TAG_ATTRIBUTE",
    "Applied",
    "Context",
    "CreateEntry",
    "CreateUser",
    "DeleteEntry",
    "EnsureMembers",
    "EnsureNotMembers",
    "ProtectTenantOu",
    "ReleaseSlot",
    "ReplaceAttributes",
    "ReserveSlot",
    "SetAccountEnabled",
    "SetObjectDacl",
    "SetPassword",
    "Step",
    "job_tag",
    "tag_of",
]
