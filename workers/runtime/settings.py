"""Every setting of the fleet, in one place.

Each field is read from ``PROVISIONER_<NAME>`` (upper case) and may be overridden by a
command-line flag ``--<name-with-dashes>`` (secrets excepted: flags show up in ``ps``).
``provisioner settings`` prints them all with their sources; the README links here.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from workers.runtime.producers import PolicyError, ProducerPolicy
from workers.runtime.retry import RetryPolicy

ENV_PREFIX = "PROVISIONER_"


def _setting(default: Any, doc: str, *, secret: bool = False) -> Any:
    return field(default=default, repr=not secret, metadata={"doc": doc, "secret": secret})


@dataclass(frozen=True)
class DomainController:
    """One DC of ``PROVISIONER_LDAP_URL``: its URL and the name its certificate shows
    (empty: the URL's host)."""

    url: str
    tls_name: str = ""

    @property
    def name(self) -> str:
        """Who the DC is: the name in its certificate, or else the URL's host (and port,
        when not 636).  A tenant's DC order is computed from the names, so every worker
        orders the same DCs the same way whatever order the URLs are listed in."""
        if self.tls_name:
            return self.tls_name.lower()
        parts = urlsplit(self.url)
        host = (parts.hostname or "").lower()
        return host if parts.port in {None, 636} else f"{host}:{parts.port}"


@dataclass(frozen=True)
class Settings:
    amqp_url: str = _setting(
        "",
        "AMQP URL of the broker: the account of the command's role, and the vhost "
        "(URL-encoded: %2F for '/'); a cluster's nodes as URLs separated by commas, "
        "tried in order.",
        secret=True,
    )
    results_amqp_url: str = _setting(
        "",
        "AMQP URL of an account that reads result events (the results role), for "
        "`publish --wait`; empty: the command's own account.",
        secret=True,
    )
    amqp_ca_file: str = _setting(
        "", "For amqps://: CA certificate (PEM) that signed the broker's; empty: the system's CAs."
    )
    amqp_tls_name: str = _setting(
        "", "For amqps://: the name in the broker's certificate, when not the URL's host."
    )
    ldap_url: str = _setting(
        "ldaps://127.0.0.1:636",
        "LDAP URL of the domain controller: ldaps:// only; several DCs of the domain as URLs "
        "separated by commas (each tenant is pinned to one: docs/operations.md).",
    )
    ldap_bind_dn: str = _setting("", "DN of the provisioner's own account.")
    ldap_bind_password: str = _setting("", "Password of that account.", secret=True)
    ldap_base_dn: str = _setting("DC=hosting,DC=test", "Base DN of the domain.")
    ldap_ca_file: str = _setting(
        "", "CA certificate (PEM) that signed the DC's certificate; empty: the system's CAs."
    )
    ldap_tls_insecure_skip_verify: bool = _setting(
        False,  # noqa: FBT003 - a default, like the others
        "true: do not validate the DC's certificate at all (a lab only; logged).",
    )
    ldap_tls_name: str = _setting(
        "",
        "Name expected in the DC's certificate when it differs from the URL's host; for "
        "several DCs, one name per URL in the same order, separated by commas.",
    )
    ldap_timeout: int = _setting(10, "Seconds to wait for the DC to connect or answer.")
    fleet_public_key_file: str = _setting(
        "", "The fleet's public key (base64); publishers seal passwords to it."
    )
    fleet_key_dir: str = _setting(
        "",
        "The fleet's key ring (mode 0700): the current and previous private keys workers "
        "open sealed passwords with (provisioner keys rotate | retire).",
    )
    results_public_key_file: str = _setting(
        "", "The results consumer's public key (base64); generated passwords are sealed to it."
    )
    producer_policy: str = _setting(
        "",
        "Which producer (broker user) may publish which event types: USER=TYPE,TYPE;USER=...; "
        "empty: none may.",
    )
    sam_digits: int = _setting(10, "Digits in generated sAMAccountNames (u + digits); at most 19.")
    prefetch: int = _setting(10, "Messages a worker may hold unacknowledged.")
    retry_delays: str = _setting(
        "1,5,30,120,600", "Seconds before each retry, by attempt (the last repeats)."
    )
    retry_attempts: int = _setting(
        10, "Attempts in all before a transient failure is dead-lettered."
    )
    retry_jitter: float = _setting(0.2, "Up to this share of a delay is taken off at random.")
    records_retention_days: int = _setting(
        30, "Days an idempotency record is kept (provisioner records purge)."
    )
    metrics_port: int = _setting(
        9464, "Port of /metrics, /healthz and /readyz (0: off); child N of a fleet: +N."
    )
    metrics_address: str = _setting(
        "127.0.0.1",
        "Address that port listens on: loopback by default; 0.0.0.0 (or ::) where the "
        "scraper and the probes come from elsewhere, as in a pod.",
    )
    ops_address: str = _setting(
        "127.0.0.1", "Address the operator's web page (provisioner ops serve) listens on."
    )
    ops_port: int = _setting(9480, "Port of the operator's web page.")
    ops_password_file: str = _setting(
        "",
        "File holding the password of the web page's one account, `operator` (HTTP Basic, "
        "over loopback or a TLS proxy); the page refuses to start without it.",
    )
    log_format: str = _setting("auto", "json, console, or auto (console on a terminal).")
    log_level: str = _setting("info", "debug, info, warning or error.")

    def __post_init__(self) -> None:
        """Every value checked up front: a bad one is a one-line error naming its variable
        and what it accepts, before any command starts (the CLI exits 2)."""
        for name, accepts, ok in _RULES:
            if not ok(getattr(self, name)):
                raise SettingsError(f"{env_name(name)}={getattr(self, name)!r}: {accepts}")
        try:
            self.retry_policy  # noqa: B018 - parsed for its errors
        except ValueError as exc:
            raise SettingsError(f"{env_name('retry_delays')}: {exc}") from None
        self.producers  # noqa: B018 - parsed for its errors
        self.domain_controllers  # noqa: B018 - parsed for its errors

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], overrides: Mapping[str, object] | None = None
    ) -> Settings:
        """Defaults, then ``PROVISIONER_*`` variables, then ``overrides`` (flags)."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(env_name(f.name))
            if raw is not None:
                values[f.name] = _convert(f.name, raw, type(f.default))
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return cls(**values)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy.parse(self.retry_delays, self.retry_attempts, self.retry_jitter)

    @property
    def broker_url(self) -> str:
        """``amqp_url``, which every command that talks to the broker needs."""
        if not self.amqp_url:
            raise SettingsError(
                f"{env_name('amqp_url')} is not set: the broker account of this command's role"
            )
        return self.amqp_url

    @property
    def results_broker_url(self) -> str:
        """``results_amqp_url``, else the command's own account."""
        return self.results_amqp_url or self.broker_url

    @property
    def domain_controllers(self) -> list[DomainController]:
        """The DCs of ``ldap_url``, each with the name its certificate must show."""
        urls = [u.strip() for u in self.ldap_url.split(",")]
        names = [n.strip() for n in self.ldap_tls_name.split(",")] if self.ldap_tls_name else []
        if len(names) == 1:
            names *= len(urls)
        if names and len(names) != len(urls):
            raise SettingsError(
                f"{env_name('ldap_tls_name')}: {len(names)} names for {len(urls)} DCs in "
                f"{env_name('ldap_url')}; give one name per URL, in the same order"
            )
        found = [DomainController(url, names[i] if names else "") for i, url in enumerate(urls)]
        if len({dc.name for dc in found}) < len(found):
            raise SettingsError(f"{env_name('ldap_url')}: a DC is named twice")
        return found

    @property
    def producers(self) -> ProducerPolicy:
        try:
            return ProducerPolicy.parse(self.producer_policy)
        except PolicyError as exc:
            raise SettingsError(f"{env_name('producer_policy')}: {exc}") from None

    def describe(self) -> list[tuple[str, str, str]]:
        """(variable, shown value, doc) for each setting; secrets are masked."""
        rows = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            shown = "********" if f.metadata["secret"] and value else str(value)
            rows.append((env_name(f.name), shown, f.metadata["doc"]))
        return rows


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _amqp_urls(value: str) -> bool:
    return all(u.strip().startswith(("amqp://", "amqps://")) for u in value.split(",") if value)


_RULES: list[tuple[str, str, Any]] = [
    (
        "amqp_url",
        "an amqp:// or amqps:// URL, or several separated by commas",
        _amqp_urls,
    ),
    (
        "results_amqp_url",
        "an amqp:// or amqps:// URL, or several separated by commas",
        _amqp_urls,
    ),
    (
        "ldap_url",
        "an ldaps:// URL, or several separated by commas",
        lambda v: bool(v) and all(u.strip().startswith("ldaps://") for u in v.split(",")),
    ),
    ("ldap_timeout", "seconds, at least 1", lambda v: v >= 1),
    ("sam_digits", "a number of digits from 1 to 19", lambda v: 1 <= v <= 19),
    ("prefetch", "at least 1", lambda v: v >= 1),
    ("retry_attempts", "at least 1", lambda v: v >= 1),
    ("retry_jitter", "a share from 0 to below 1", lambda v: 0 <= v < 1),
    ("records_retention_days", "days, at least 1", lambda v: v >= 1),
    ("metrics_port", "a port from 0 (off) to 65535", lambda v: 0 <= v <= 65535),
    ("metrics_address", "an IPv4 or IPv6 address, like 127.0.0.1 or 0.0.0.0", _is_address),
    ("log_format", "json, console or auto", lambda v: v in {"json", "console", "auto"}),
    (
        "log_level",
        "debug, info, warning or error",
        lambda v: v in {"debug", "info", "warning", "error"},
    ),
]


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def flag_fields() -> list[dataclasses.Field[Any]]:
    """The settings a command-line flag may override: all but secrets."""
    return [f for f in dataclasses.fields(Settings) if not f.metadata["secret"]]


class SettingsError(ValueError):
    """A setting has a value of the wrong kind."""


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def parse_bool(raw: str) -> bool:
    """``true``/``false`` (also 1/0, yes/no, on/off), as a variable or a flag gives it."""
    value = raw.strip().lower()
    if value in _TRUE | _FALSE:
        return value in _TRUE
    raise ValueError(f"{raw!r} is neither true nor false")


def value_type(kind: type) -> Any:
    """How a setting of this type is read from text (``bool("false")`` would be True)."""
    return parse_bool if kind is bool else kind


def _convert(name: str, raw: str, kind: type) -> Any:
    try:
        return value_type(kind)(raw)
    except ValueError:
        raise SettingsError(f"{env_name(name)}={raw!r} is not a valid {kind.__name__}") from None
