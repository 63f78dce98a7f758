"""Developer tools that are not part of the library: the generator of the README figures."""
