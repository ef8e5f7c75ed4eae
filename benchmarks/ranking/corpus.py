"""A judged corpus built offline from this Python's own standard library, for choosing
the ranking (``benchmarks/ranking.py``): one Markdown document per module, made of its
docstring and the docstrings of its public functions and classes.

Deterministic for a given Python version: modules in :data:`MODULES` order, members
sorted by name.
"""

from __future__ import annotations

import importlib
import inspect
import warnings
from pathlib import Path

_NAMES = (
    "abc argparse array ast asyncio base64 bisect binascii bz2 calendar cmath cmd code "
    "codecs collections colorsys concurrent.futures configparser contextlib copy csv "
    "ctypes dataclasses datetime decimal difflib dis doctest email enum filecmp fileinput "
    "fnmatch fractions ftplib functools gc getopt getpass gettext glob graphlib gzip "
    "hashlib heapq hmac html html.parser http.client http.server imaplib inspect io "
    "ipaddress itertools json keyword linecache locale logging lzma mailbox mimetypes "
    "math mmap multiprocessing netrc numbers operator optparse os os.path pathlib pdb "
    "pickle pkgutil platform plistlib poplib pprint profile pstats queue quopri random re "
    "reprlib sched secrets select selectors shelve shlex shutil signal smtplib socket "
    "socketserver sqlite3 ssl stat statistics string struct subprocess sys sysconfig "
    "tarfile tempfile textwrap threading time timeit token tokenize tomllib trace "
    "traceback tracemalloc types typing unicodedata unittest urllib.parse "
    "urllib.request uuid warnings weakref webbrowser wsgiref xml.dom.minidom "
    "xml.etree.ElementTree zipfile zlib zoneinfo"
)
MODULES = tuple(_NAMES.split())


def document(name: str) -> str:
    """The Markdown text of one module's documentation."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = importlib.import_module(name)
    parts = [f"# {name}", "", inspect.getdoc(module) or ""]
    public = getattr(module, "__all__", None) or [n for n in dir(module)
                                                  if not n.startswith("_")]
    for member in sorted(set(public)):
        value = getattr(module, member, None)
        if not (inspect.isfunction(value) or inspect.isclass(value)
                or inspect.isbuiltin(value)):
            continue
        doc = inspect.getdoc(value)
        owner = getattr(value, "__module__", None) or name
        if doc and owner.split(".")[0].lstrip("_") == name.split(".")[0]:
            parts += ["", f"## {name}.{member}", "", doc]
    return "\n".join(parts) + "\n"


def write(folder: Path) -> list[str]:
    """Write every module's document into ``folder`` (``<module>.md``); their stems."""
    folder.mkdir(parents=True, exist_ok=True)
    stems = []
    for name in MODULES:
        (folder / f"{name}.md").write_text(document(name), encoding="utf-8")
        stems.append(name)
    return stems
