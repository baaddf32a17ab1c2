"""The fleet's way to the broker: its settings made into pika's connection parameters
(TLS verified, :mod:`messages.amqp`), and the error that means the broker failed."""

from __future__ import annotations

import pika.exceptions

from messages import amqp
from workers.runtime.settings import Settings, SettingsError, env_name

BrokerError = pika.exceptions.AMQPError


def parameters(settings: Settings) -> amqp.Endpoints:
    """How to reach the broker: the node(s) of ``broker_url``, in order, their certificates
    verified for amqps://."""
    return _endpoints(settings, settings.broker_url, "amqp_url")


def results_parameters(settings: Settings) -> amqp.Endpoints:
    """How the reader of result events reaches the broker (``results_broker_url``)."""
    return _endpoints(settings, settings.results_broker_url, "results_amqp_url")


def _endpoints(settings: Settings, urls: str, setting: str) -> amqp.Endpoints:
    try:
        return amqp.endpoints(urls, settings.amqp_ca_file, settings.amqp_tls_name)
    except (ValueError, OSError) as exc:
        raise SettingsError(f"{env_name(setting)}: {exc}") from None
