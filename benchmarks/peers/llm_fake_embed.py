"""An ``llm`` plugin registering the hash embedder as the model ``peers-fake-1536``.

The benchmark registers this module with llm's plugin manager in the child process
(``llm.plugins.pm.register``) before it runs ``llm embed-multi``; nothing is installed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import llm
from fake_embedding import vector


class FakeEmbedding(llm.EmbeddingModel):
    """Hash-seeded vectors, 1,536 dimensions, free and deterministic."""

    model_id = "peers-fake-1536"
    batch_size = 100

    def embed_batch(self, items: Iterable[str | bytes], *, key: str | None = None
                    ) -> Iterator[list[float]]:
        for item in items:
            yield vector(item if isinstance(item, str) else item.decode("utf-8", "replace"))


@llm.hookimpl
def register_embedding_models(register):  # type: ignore[no-untyped-def]
    register(FakeEmbedding())
