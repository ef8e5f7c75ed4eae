"""An example batch-indexer connector: the notes kept in one JSON file.

``indexer sync notes:///home/me/notes.json`` indexes every note of a file like::

    {"revision": 3,
     "notes": [{"id": "tea", "title": "Tea", "body": "Steep green tea at 80 °C.",
                "tags": ["kitchen"], "revision": 3}],
     "deleted": [{"id": "coffee", "revision": 2}]}

Every change bumps the file's ``revision`` and records it on the note (or on the
``deleted`` entry), so the connector can tell what changed since a revision without
listing every note (:class:`ReportsChanges`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer.config import SourceConfig
from indexer.connectors import formats
from indexer.connectors.contract import Changes, ConnectorContext
from indexer.connectors.registry import ConnectorSpec
from indexer.errors import ConfigError, SourceError
from indexer.records import Document, Skip, SourceItem

SPEC = ConnectorSpec(name="notes", schemes=("notes",), factory="indexer_notes:create")
"""What the ``batch_indexer.connectors`` entry point names: notes:// sources."""


@dataclass(frozen=True)
class NotesSource:
    """The notes of one JSON file; with ``tag``, only the notes that carry it."""

    path: Path
    tag: str | None = None

    @property
    def uri(self) -> str:
        """The source's identity: its notes are recorded under it."""
        return f"notes://{self.path.as_posix()}"

    def scan(self) -> Iterator[SourceItem | Skip]:
        """Every note, from the file's index alone (the pipeline loads only changed ones)."""
        for note in self._read()["notes"]:
            yield from self._item(note)

    def load(self, item: SourceItem) -> Document | Skip:
        """A note's text, as Markdown under its title."""
        wanted = item.uri.rpartition("#")[2]
        for note in self._read()["notes"]:
            if note["id"] == wanted:
                text = f"# {note.get('title', '')}\n\n{note.get('body', '')}\n"
                return formats.document(item.uri, text.encode("utf-8"), "markdown")
        return Skip(item.uri, "note vanished since the scan")

    def cursor(self) -> str | None:
        """The file's revision: the next sync asks what changed after it."""
        return str(self._read()["revision"])

    def changes(self, since: str) -> Changes | None:
        """Notes changed or deleted after revision ``since`` (None: list everything)."""
        data = self._read()
        if not since.isdigit() or int(since) > data["revision"]:
            return None
        after = int(since)
        found = tuple(item for note in data["notes"] if note["revision"] > after
                      for item in self._item(note))
        deleted = tuple(f"{self.uri}#{gone['id']}" for gone in data.get("deleted", ())
                        if gone["revision"] > after)
        return Changes(found=found, deleted=deleted)

    def _item(self, note: dict[str, Any]) -> Iterator[SourceItem]:
        if self.tag is None or self.tag in note.get("tags", ()):
            yield SourceItem(uri=f"{self.uri}#{note['id']}", path=self.path,
                             size=len(note.get("body", "")), mtime_ns=0, format="markdown",
                             version=str(note["revision"]))

    def _read(self) -> dict[str, Any]:
        """The notes file; a file that is missing or not a notes file is a SourceError:
        the whole source fails and nothing of it is deleted."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SourceError(f"notes file {self.path} cannot be read ({exc}); check the "
                              "path in config.toml") from exc
        if not isinstance(data, dict) or not isinstance(data.get("notes"), list):
            raise SourceError(f"{self.path} is not a notes file (no \"notes\" list)")
        return data


def create(source: SourceConfig, context: ConnectorContext) -> NotesSource:
    """The factory ``SPEC`` names: one notes source from its ``[[sources]]`` entry."""
    unknown = set(source.options) - {"tag"}
    if unknown:
        raise ConfigError(f"source {source.path}: unknown setting(s) {sorted(unknown)} "
                          "for a notes source (known: tag)")
    tag = source.options.get("tag")
    if tag is not None and not isinstance(tag, str):
        raise ConfigError(f"source {source.path}: tag must be a string, not {tag!r}")
    return NotesSource(Path(source.path.removeprefix("notes://")), tag)
