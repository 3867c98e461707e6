"""tiktoken's ``Encoding`` without its Python copy of the ranks.

``tiktoken.Encoding`` keeps the ``mergeable_ranks`` dict it was built from (``_mergeable_ranks``) beside the Rust
``CoreBPE``, which holds its own copies (encoder, decoder, sorted tokens). Every method we call — ``encode``,
``encode_ordinary``, ``decode`` — goes to the ``CoreBPE``; tiktoken reads ``_mergeable_ranks`` only to pickle an
encoding. For cl100k the dict is ~10 MB of a long-running sidecar's memory (bench/bench_memory.py), for o200k
twice that, so it is not kept: asked for, the ranks are read again from the bundled file (checksum included), and
an encoding pickles by name (unpickled from the same bundled file, through ``get_encoding``'s cache).

Imported only when an encoding is first built (it imports tiktoken).
"""

from __future__ import annotations

from typing import Any

import tiktoken

__all__ = ["BundledEncoding", "count_long"]


class BundledEncoding(tiktoken.Encoding):
    """A tiktoken ``Encoding`` built from a bundled file; only the Rust core keeps the ranks."""

    @property
    def _mergeable_ranks(self) -> dict[bytes, int]:
        from ._tokens import _read_bundled

        return _read_bundled(self.name, None)

    @_mergeable_ranks.setter
    def _mergeable_ranks(self, value: dict[bytes, int]) -> None:
        """``Encoding.__init__`` stores the dict it was given; dropped here once ``CoreBPE`` has its own copy."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        from ._tokens import get_encoding

        return get_encoding, (self.name,)



def count_long(encoding: tiktoken.Encoding, text: str) -> int:
    """``len(encoding.encode_ordinary(text))`` without the list: the tokens stay in tiktoken's buffer (4 bytes each,
    the one ``encode_to_numpy`` reads) instead of becoming a list of Python ints (~40 bytes each: 4.5 MB for a
    500 KB prompt, per request being counted at once). Surrogates are repaired as ``encode_ordinary`` does."""
    core: Any = encoding._core_bpe
    try:
        buffer = core.encode_to_tiktoken_buffer(text, set())
    except UnicodeEncodeError:
        buffer = core.encode_to_tiktoken_buffer(text.encode("utf-16", "surrogatepass").decode("utf-16", "replace"),
                                                set())
    return memoryview(buffer).nbytes // 4
