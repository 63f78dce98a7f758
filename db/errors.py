"""Named exceptions for everything that can be wrong with a database file.

Each message is one line that says what to do, so the scripts can print it instead of a
traceback.
"""


class DatabaseError(Exception):
    """Base class: the DB cannot be used as asked."""


class DatabaseNotFoundError(DatabaseError):
    """The DB file does not exist."""


class NotADatabaseError(DatabaseError):
    """The file exists but is not an SQLite database of this project."""


class SchemaVersionError(DatabaseError):
    """The DB was written by another version of the schema."""


class NoFeaturesError(DatabaseError):
    """Nothing was extracted into the DB yet, so there is nothing to search."""


class SettingsMismatchError(DatabaseError):
    """Features in the DB were made with other settings (model, hash size, bins)."""


class DatasetRootError(DatabaseError):
    """The DB indexes another folder than the one given."""


class DatabaseBusyError(DatabaseError):
    """Another process is already extracting into this DB."""
