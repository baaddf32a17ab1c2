"""The event contract: envelope, event catalogue, msgpack codec and validation.

Pure: nothing here does I/O except :mod:`messages.publisher`, the producer's edge.
"""
