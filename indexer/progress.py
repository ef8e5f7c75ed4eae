"""How the library reports long work without printing: a small observer interface."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives stage starts, advances and ends, and what the run waits on; the CLI
    draws them as one progress bar with a status line under it.

    A sync's embedding is one stage for the whole run (every shard, every batch), so its
    bar shows chunks done of the run's total, its rate and an estimated end.
    """

    def stage(self, name: str, total: int | None = None) -> None:
        """A stage begins (``total`` units, or unknown)."""
        ...

    def advance(self, n: int = 1) -> None:
        """``n`` more units of the current stage are done."""
        ...

    def end(self) -> None:
        """The current stage is over."""
        ...

    def update(self, name: str, completed: int, total: int) -> None:
        """Show an absolute position (a stage of that name starts if none is running)."""
        ...

    def note(self, text: str) -> None:
        """Say what the run is doing or waiting on now (uploading, a batch's progress,
        downloading); an empty text clears it."""
        ...


class Silent:
    """A :class:`Progress` that shows nothing (the library's default)."""

    def stage(self, name: str, total: int | None = None) -> None:
        """Ignore the stage."""

    def advance(self, n: int = 1) -> None:
        """Ignore the advance."""

    def end(self) -> None:
        """Ignore the end."""

    def update(self, name: str, completed: int, total: int) -> None:
        """Ignore the position."""

    def note(self, text: str) -> None:
        """Ignore the note."""
