"""Persistence: SQLAlchemy tables and repositories, Alembic migrations, the encrypted blob
store and the keyring. Repositories return domain objects, never rows."""
