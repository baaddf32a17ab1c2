"""The worker fleet: the pika edge, the ldap3 edge, and the engine between them."""
