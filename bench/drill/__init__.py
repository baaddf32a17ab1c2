"""The fault drill: mixed events through a worker fleet while workers are killed, the
broker restarts and the directory goes away; then the directory is compared, object by
object and attribute by attribute, with a model of the events.

- :mod:`bench.drill.scenario`: the events (in waves) and the poison messages;
- :mod:`bench.drill.model`: what the directory must hold after them (its own small
  model of the events, not the engine's planner);
- :mod:`bench.drill.observe`: what the directory holds (plain ldap3), and the diff;
- :mod:`bench.drill.run`: the fleet, the faults, the waves, the report.

``python -m bench.drill`` runs it on the local platform (``deploy/local/platform up``);
``tests/integration/test_drill.py`` runs a smaller one in the suite.
"""
