"""The simulator tests' fixtures (``sim``, ``client``: tests/sim/simfixtures.py), found by pytest here instead of
being imported by every test module (where each test's parameter redefined the imported name)."""

from simfixtures import client, sim  # noqa: F401
