"""How large chunks are: the settings every chunking step reads."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from indexer.config import Config
from indexer.errors import ConfigError

MIN_LIMIT = 16
"""The smallest chunk budget, in tokens."""


@dataclass(frozen=True)
class ChunkerSettings:
    """How large chunks are.

    ``max_tokens`` bounds :attr:`Chunk.embed_text` (context and text), counted with
    cl100k; ``hard_limit`` is never exceeded whatever ``max_tokens`` says;
    ``target_tokens`` is the typical chunk size (default: 60% of the limit); ``context``
    prepends the heading breadcrumb to each chunk's embedded text.
    """

    max_tokens: int = Config.chunk_tokens
    hard_limit: int = 8000
    target_tokens: int | None = None
    context: bool = True

    def __post_init__(self) -> None:
        if min(self.max_tokens, self.hard_limit) < MIN_LIMIT:
            raise ConfigError(f"chunk max_tokens and hard_limit must be at least {MIN_LIMIT}")
        if self.target_tokens is not None and self.target_tokens < 1:
            raise ConfigError("chunk target_tokens must be positive")

    @cached_property  # read for every section: kept once computed
    def limit(self) -> int:
        """The bound every chunk's token count stays within."""
        return min(self.max_tokens, self.hard_limit)

    @cached_property
    def target(self) -> int:
        """The typical chunk size, at most the limit."""
        wanted = self.target_tokens or round(self.limit * 0.6)
        return max(1, min(wanted, self.limit))
