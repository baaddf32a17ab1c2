"""What operators run against the fleet's state: the one-time bootstrap, the drift audit,
dead-letter views and dry runs."""
