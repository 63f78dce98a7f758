"""One module per feature family, each: images in, an (n, d) array out.

- embeddings: CNN vectors (float32), features.network (its own package: base, loader, runtimes)
- rgb: joint colour histogram (float32), features.histogram
- ahash / dhash / phash: perceptual hashes (packed uint8), features.hashes
features.decode makes the one shared decoded copy they all start from; features.extract
runs them together on a batch.
"""
