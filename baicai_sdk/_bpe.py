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

__all__ = ["BundledEncoding"]


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

