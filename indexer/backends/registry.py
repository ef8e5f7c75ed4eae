"""The embedding backends this installation knows: the built-in ones and plugins.

A backend is described by a :class:`BackendSpec`: its name, what it can do, the
settings that fix its vector space, and a factory that is imported only when the
backend is used, so listing backends (``--backend``, config validation, ``gc``)
loads no model and no SDK. The job runner, ``gc``, ``status`` and the CLI ask the
spec (or the backend's own ``remote`` flag), never compare names.

A third-party backend is a package that exposes a ``BackendSpec`` under the entry
point group ``batch_indexer.backends``::

    [project.entry-points."batch_indexer.backends"]
    mistral = "indexer_mistral:SPEC"
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from indexer.errors import ConfigError

if TYPE_CHECKING:
    from indexer.backends.contract import Backend
    from indexer.config import Config

ENTRY_POINTS = "batch_indexer.backends"
AUTO = "auto"


@dataclass(frozen=True)
class BackendSpec:
    """What the pipeline needs to know of a backend before (or without) loading it.

    ``factory`` names ``"module:function"``, called as ``function(config, index_id,
    batches)`` to build the :class:`~indexer.backends.contract.Backend`. ``remote``:
    jobs run on a service (token budget, waves, remote files to clean up, cancel).
    ``priced``: the service bills tokens (the config's price table applies).
    ``identity``: the config settings that decide the vectors; changing one needs
    ``sync --rebuild``. ``auto_env``: ``backend = "auto"`` picks this backend when
    that environment variable is set. ``describe`` puts the identity in words.
    ``embeds_queries``: the backend embeds a search query itself (a batch-only service
    would not).
    """

    name: str
    summary: str
    factory: str
    remote: bool
    priced: bool
    identity: tuple[str, ...]
    describe: Callable[[Config], str]
    auto_env: str | None = None
    embeds_queries: bool = True

    def create(self, config: Config, index_id: str, batches: Path) -> Backend:
        """Import the backend's module and build it for this index (``batches``, its
        scratch folder, is made by the caller when the run writes: a plan makes none)."""
        module, _, name = self.factory.partition(":")
        make = getattr(importlib.import_module(module), name)
        backend: Backend = make(config, index_id, batches)
        return backend


def _describe_openai(config: Config) -> str:
    return f"{config.model} ({config.dimensions or 'default'} dimensions)"


def _describe_local(config: Config) -> str:
    return f"the local model at {config.model_dir or 'the packaged default'}"


BUILTIN = (
    BackendSpec("local", "the embedded all-MiniLM-L6-v2 (offline, free)",
                "indexer.backends.local.backend:create", remote=False, priced=False,
                identity=("model_dir",), describe=_describe_local),
    BackendSpec("openai", "OpenAI's Batch API (half the synchronous price)",
                "indexer.backends.openai:create", remote=True, priced=True,
                identity=("model", "dimensions"), describe=_describe_openai,
                auto_env="OPENAI_API_KEY"),
)


_BUILTIN = {spec.name: spec for spec in BUILTIN}


@cache
def specs() -> Mapping[str, BackendSpec]:
    """Every known backend by name: built-ins first, then installed plugins (their entry
    points are read once per process, and only when a name is not a built-in one)."""
    from importlib.metadata import entry_points

    found = dict(_BUILTIN)
    for point in entry_points(group=ENTRY_POINTS):
        spec = point.load()
        if not isinstance(spec, BackendSpec):
            raise ConfigError(f"the plugin {point.value!r} registered under {ENTRY_POINTS} "
                              "is not a BackendSpec")
        found.setdefault(spec.name, spec)
    return found


def names() -> list[str]:
    """The names ``--backend`` and ``backend =`` accept, ``auto`` first."""
    return [AUTO, *specs()]


def known(name: str) -> bool:
    """Whether ``--backend`` and ``backend =`` accept ``name`` (see :func:`names`); a
    built-in name is known without reading the plugins' entry points."""
    return name == AUTO or name in _BUILTIN or name in specs()


def get(name: str) -> BackendSpec:
    """The backend called ``name``; an unknown name lists what is installed. A built-in
    name is found without reading the plugins' entry points: a plugin cannot take it."""
    spec = _BUILTIN.get(name) or specs().get(name)
    if spec is None:
        raise ConfigError(f"unknown backend {name!r}; installed: {', '.join(specs())} "
                          f"(plugins register under the {ENTRY_POINTS!r} entry points)")
    return spec


def choose(name: str, environ: Mapping[str, str] = os.environ) -> BackendSpec:
    """The backend ``name`` means: for ``auto``, the first whose ``auto_env`` is set,
    else the first offline one."""
    if name != AUTO:
        return get(name)
    for spec in BUILTIN:  # built-ins come first: one chosen by its variable needs no scan
        if spec.auto_env and environ.get(spec.auto_env):
            return spec
    every = list(specs().values())
    for spec in every:
        if spec.auto_env and environ.get(spec.auto_env):
            return spec
    return next(spec for spec in every if not spec.remote)
