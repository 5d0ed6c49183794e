"""Vector indexes. The index is derived data: it can always be rebuilt from the encrypted
templates in storage.

Importing this package does not import FAISS: ``FaissIndex`` lives in
``probity.index.faiss_index`` and ``open_index("faiss", ...)`` imports it on first use.
"""

from probity.index.base import Hit, VectorIndex
from probity.index.exact import ExactIndex
from probity.index.factory import BACKENDS, index_file, index_paths, index_plaintext, open_index
from probity.index.files import atomic_write_bytes

__all__ = [
    "BACKENDS",
    "ExactIndex",
    "Hit",
    "VectorIndex",
    "atomic_write_bytes",
    "index_file",
    "index_paths",
    "index_plaintext",
    "open_index",
]
