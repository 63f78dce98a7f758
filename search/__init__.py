"""Search: metric kernels, matrices loaded once per process, the ann_cosine index (IVF or Annoy)."""
