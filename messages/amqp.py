"""How every process of the project reaches the broker: one place that turns a URL, or
the URLs of a cluster's nodes (comma-separated), into pika's connection parameters.

``amqp://`` is plain.  ``amqps://`` is TLS with the broker's certificate always verified:
against ``ca_file`` (PEM) when given, else the system's trust store; and its name
checked: ``tls_name`` when the certificate names the broker otherwise than the URL's
host does, else that host.  There is no setting that turns verification off.

A cluster is given as one URL per node, in the order to try them: a connection goes to
the first node that answers, and a process that loses its connection reconnects through
the same list (pika's ``BlockingConnection`` takes the list as it is).  The URLs name one
account and one vhost.
"""

from __future__ import annotations

import ssl
from typing import TypeAlias

import pika

Endpoints: TypeAlias = list[pika.ConnectionParameters]  # one broker's nodes, in order
# URLs, or what :func:`parameters` or :func:`endpoints` make
Broker: TypeAlias = str | pika.ConnectionParameters | Endpoints


def parameters(url: str, ca_file: str = "", tls_name: str = "") -> pika.URLParameters:
    params = pika.URLParameters(url)
    if params.ssl_options is not None:  # amqps://
        context = ssl.create_default_context(cafile=ca_file or None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        params.ssl_options = pika.SSLOptions(context, server_hostname=tls_name or params.host)
    elif ca_file or tls_name:
        raise ValueError("a CA file or TLS name is given, but the URL is not amqps://")
    return params


def endpoints(urls: str, ca_file: str = "", tls_name: str = "") -> Endpoints:
    """``urls``, comma-separated, as the parameters of each node, in order."""
    found: Endpoints = [
        parameters(u.strip(), ca_file, tls_name) for u in urls.split(",") if u.strip()
    ]
    if not found:
        raise ValueError("no broker URL")
    if len({user_of(p) for p in found}) > 1 or len({p.virtual_host for p in found}) > 1:
        raise ValueError("the URLs of one broker name one account and one vhost")
    return found


def as_endpoints(broker: Broker) -> Endpoints:
    if isinstance(broker, str):
        return endpoints(broker)
    if isinstance(broker, list):
        return broker
    return [broker]


def user_of(broker: pika.ConnectionParameters | Endpoints) -> str | None:
    """The broker user a connection made with ``broker`` authenticates as."""
    first = broker[0] if isinstance(broker, list) else broker
    return getattr(first.credentials, "username", None)
