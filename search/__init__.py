"""Search: metric kernels, matrices loaded once per process, the Annoy index."""
