"""Offline sample collections built from images that ship inside pip packages."""
