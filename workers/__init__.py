"""The worker fleet, one subpackage per concern, from the top floor down:

- ``cli``: ``provisioner``, the command line;
- ``broker``: the pika edge of the fleet: the consumer, the topology, the dead-letter queue;
- ``ops``: what operators run against the fleet's state: the bootstrap, audit, dead-letter
  views, dry runs;
- ``delivery``: what becomes of one message: the decision, failure headers, the
  idempotency records;
- ``provisioning``: what an event means for the directory: plans, steps, the engine that
  runs and rolls them back, names, security descriptors, the job's keys;
- ``directory``: the directory as the engine sees it (the port), its ldap3 edge, the
  metered wrapper;
- ``runtime``: the ground floor: settings and the policies they hold, logs, metrics, the
  supervisor, the sealing key ring.

Each imports only those below it (import-linter checks it: ``pyproject.toml``).
"""
