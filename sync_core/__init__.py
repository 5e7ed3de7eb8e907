"""baysync engine: configuration, database, migrations, eBay client, sync workers.

This package must never import ``textual`` or ``console`` (see tests/test_import_hygiene.py).
"""

__version__ = "0.1.0"
