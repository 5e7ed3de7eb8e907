"""Alembic environment. baysync normally calls Alembic with an open connection (see
sync_core/migrate.py, which holds the advisory lock and records migration_log); run standalone
(`alembic -c migrations/alembic.ini upgrade head`), it builds its engine with the same factory."""

from alembic import context

from sync_core import streams, tables

config = context.config
# Used only for autogenerate and drift checks; revisions themselves never import current table code.
target_metadata = config.attributes.get("target_metadata", [tables.metadata, streams.metadata])


def _configure_and_run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        transaction_per_migration=True,
        compare_type=True,
        on_version_apply=config.attributes.get("on_version_apply"),
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
elif connection is not None:
    _configure_and_run(connection)
else:
    from sync_core.config import load_settings
    from sync_core.db import make_engine

    engine = make_engine(load_settings(), "migrate")
    with engine.connect() as conn:
        _configure_and_run(conn)
        conn.commit()
    engine.dispose()
