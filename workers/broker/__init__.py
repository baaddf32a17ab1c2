"""The pika edge of the fleet: the consumer, the broker topology and the dead-letter queue."""
