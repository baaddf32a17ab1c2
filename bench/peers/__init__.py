"""Do-nothing jobs of other job frameworks, run from the bench's own venv (never the
project's dependencies): the peers that bench.pipeline compares the fleet's pipeline with."""
