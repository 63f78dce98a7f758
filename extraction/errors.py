"""Why a run cannot start as asked: scripts print the one-line message and exit with status 2."""


class ExtractionError(Exception):
    """A run that cannot go ahead; nothing was changed."""


class DatasetFolderError(ExtractionError):
    """The collection's folder is missing, empty or not a folder (a drive not mounted?)."""


class ClusterError(ExtractionError):
    """The Dask cluster asked for cannot be used (unreachable scheduler, no workers, other code)."""
