"""Exceptions of the features package that scripts catch without importing torch."""


class WeightsError(Exception):
    """Verified weights for the requested model are not on this machine."""
