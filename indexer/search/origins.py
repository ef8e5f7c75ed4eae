"""Search hits cite where their text comes from: each place of a hit whose source can
say (:class:`~indexer.connectors.contract.Cites`, a git repository) gets its
:class:`~indexer.records.Origin`: the path, the revision the last sync stored as the
source's cursor, and a web permalink. Done here, once, after ranking: no mode and no
stored column knows of it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from indexer.connectors.contract import Cites, Connector
from indexer.records import Place, SearchHit


def cite(hits: list[SearchHit], sources: Sequence[Connector],
         meta: Mapping[str, str]) -> list[SearchHit]:
    """``hits`` with the origin of every place a source cites filled in; ``meta`` is the
    ledger's, which keeps each source's cursor under ``cursor <source uri>``."""
    citing = [(s.uri.rstrip("/") + "/", s, meta.get(f"cursor {s.uri}"))
              for s in sources if isinstance(s, Cites)]
    if not citing:
        return hits

    def origin(place: Place) -> Place:
        for prefix, source, cursor in citing:
            if place.uri.startswith(prefix):
                assert isinstance(source, Cites)
                return replace(place, origin=source.cite(place, cursor))
        return place

    return [replace(hit, places=tuple(origin(p) for p in hit.places)) for hit in hits]
