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
    try:
        return amqp.endpoints(settings.broker_url, settings.amqp_ca_file, settings.amqp_tls_name)
    except (ValueError, OSError) as exc:
        raise SettingsError(f"{env_name('amqp_url')}: {exc}") from None


def results_parameters(settings: Settings) -> amqp.Endpoints:
    """How the reader of result events reaches the broker (``results_broker_url``)."""
    try:
        return amqp.endpoints(
            settings.results_broker_url, settings.amqp_ca_file, settings.amqp_tls_name
        )
    except (ValueError, OSError) as exc:
        raise SettingsError(f"{env_name('results_amqp_url')}: {exc}") from None
