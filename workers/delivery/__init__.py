"""What becomes of one message: the decision, the headers of a failure and the idempotency
records.  No pika here."""
