"""The ground floor of the fleet: settings and the policies they hold (retries, producers),
logs, metrics, the supervisor and the sealing key ring."""
