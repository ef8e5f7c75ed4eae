"""How the library reports long work without printing: a small observer interface."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives stage starts, advances and ends; the CLI draws them as progress bars."""

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
