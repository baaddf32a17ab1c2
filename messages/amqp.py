"""How every process of the project reaches the broker: one place that turns a URL into
pika's connection parameters.

``amqp://`` is plain.  ``amqps://`` is TLS with the broker's certificate always verified:
against ``ca_file`` (PEM) when given, else the system's trust store; and its name
checked: ``tls_name`` when the certificate names the broker otherwise than the URL's
host does, else that host.  There is no setting that turns verification off.
"""

from __future__ import annotations

import ssl
from typing import TypeAlias

import pika

Broker: TypeAlias = str | pika.ConnectionParameters  # a URL, or what :func:`parameters` makes


def parameters(url: str, ca_file: str = "", tls_name: str = "") -> pika.URLParameters:
    params = pika.URLParameters(url)
    if params.ssl_options is not None:  # amqps://
        context = ssl.create_default_context(cafile=ca_file or None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        params.ssl_options = pika.SSLOptions(context, server_hostname=tls_name or params.host)
    elif ca_file or tls_name:
        raise ValueError("a CA file or TLS name is given, but the URL is not amqps://")
    return params


def as_parameters(broker: Broker) -> pika.ConnectionParameters:
    return parameters(broker) if isinstance(broker, str) else broker


def user_of(params: pika.ConnectionParameters) -> str | None:
    """The broker user a connection made with ``params`` authenticates as."""
    return getattr(params.credentials, "username", None)
