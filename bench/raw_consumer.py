"""The baseline consumer: raw pika, consume and ack, nothing else.

``python -m bench.raw_consumer AMQP_URL QUEUE PREFETCH``; stops on SIGTERM.
"""

from __future__ import annotations

import signal
import sys

import pika


def main() -> None:
    url, queue, prefetch = sys.argv[1], sys.argv[2], int(sys.argv[3])
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=prefetch)
    for method, _properties, _body in channel.consume(queue, inactivity_timeout=0.5):
        if stopping:
            break
        if method is not None:
            channel.basic_ack(method.delivery_tag)
    channel.cancel()
    connection.close()


if __name__ == "__main__":
    main()
