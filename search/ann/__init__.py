"""The approximate index behind ``ann_cosine``: one package, two files.

- index: builds, saves, trusts and queries the index of a loaded matrix (one builder at a time)
- kinds: the index kinds config.ANN_INDEX chooses from (faiss' IVF, Annoy), and the faiss import
"""
from search.ann.index import build, get_index, index_dir, index_file, query, search, unit_matrix, wanted_stamp
from search.ann.kinds import KINDS, import_faiss

__all__ = ["KINDS", "build", "get_index", "import_faiss", "index_dir", "index_file", "query", "search",
           "unit_matrix", "wanted_stamp"]
