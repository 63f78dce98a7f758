"""All SQL of the project lives in this package (parameterised queries only)."""
from db.connection import SCHEMA_VERSION, ScanLock, WriterLock, connect, copy_database, database_file
from db.errors import (
    DatabaseBusyError,
    DatabaseError,
    DatabaseNotFoundError,
    DatasetRootError,
    NoFeaturesError,
    NotADatabaseError,
    SchemaVersionError,
    SettingsMismatchError,
)

__all__ = [
    "SCHEMA_VERSION", "ScanLock", "WriterLock", "connect", "copy_database", "database_file", "DatabaseBusyError",
    "DatabaseError",
    "DatabaseNotFoundError", "DatasetRootError", "NoFeaturesError", "NotADatabaseError", "SchemaVersionError",
    "SettingsMismatchError",
]
