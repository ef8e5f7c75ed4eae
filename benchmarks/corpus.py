"""Build a docs corpus offline and deterministically: the Python standard library as pages.

Every module of the running Python's standard library (``*.py`` under ``sys.prefix``'s
``lib/pythonX.Y``, site-packages left out) is rendered from its syntax tree, never
imported: a Markdown API page per module (module docstring, then per class and function
a heading, the signature, the docstring and the source in a fenced block). Every tenth
page is written as reStructuredText instead, every twentieth as a PDF of its docstrings
(via ``tests/pdfgen.py``), so the three text formats a docs site holds are all read.
The 1,000 largest modules are rendered as they are (ties by path; fewer with a smaller
``--files``), so the same Python always builds the same bytes: about 1,000 files and
30 MB (10 M cl100k tokens) on CPython 3.11. Past 1,000, each further page recombines
real sections: two module names make its name, a real module's docstring opens it, and
runs of consecutive classes and functions drawn from random modules fill it to the
length of a random real page. A page depends only on its number (a seeded shuffle), so
a larger corpus starts with the smaller one's files: 10,000 files are about 300 MB, and
about 16,000 make a million chunks at the default 200-token budget.

    python benchmarks/corpus.py OUT [--files 1000]   # any number: 10000, 20000

Other benchmarks import :func:`build`.
"""

from __future__ import annotations

import argparse
import ast
import random
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from pdfgen import write_pdf

_PAGE_LINES = 48
REAL_FILES = 1000
"""Pages rendered from one module each; the rest recombine their sections."""
_LINE_CHARS = 90


def modules() -> list[tuple[str, Path]]:
    """``(dotted name, path)`` of every standard-library module, sorted by path."""
    root = Path(sysconfig.get_paths()["stdlib"])
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if rel.parts[0] in ("site-packages", "dist-packages") or "-" in rel.as_posix():
            continue
        name = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        found.append((name, path))
    return found


def _signature(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> str:
    if isinstance(node, ast.ClassDef):
        bases = ", ".join(ast.unparse(b) for b in node.bases)
        return f"class {node.name}({bases})" if bases else f"class {node.name}"
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    return f"{prefix} {node.name}({ast.unparse(node.args)}){returns}"


def _members(body: list[ast.stmt], depth: int) -> Iterator[tuple[int, ast.AST]]:
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield depth, node
            if isinstance(node, ast.ClassDef):
                yield from _members(node.body, depth + 1)


def _rst_heading(text: str, depth: int) -> str:
    mark = "=-~^"[min(depth, 3)]
    return f"{text}\n{mark * max(len(text), 4)}"


@dataclass(frozen=True)
class Member:
    """A class or function of a module, format-neutral: a page section."""

    title: str  # "class Outer.Inner" or "Outer.method()"
    depth: int  # heading depth, 1 to 5
    signature: str
    text: str  # its docstring
    code: str  # a function's source; "" for a class


def members(source: str) -> tuple[str, list[Member]]:
    """A module's docstring and its classes and functions, in source order."""
    tree = ast.parse(source)
    lines = source.splitlines()
    found: list[Member] = []
    owners: list[str] = []
    for depth, node in _members(tree.body, 1):
        assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        del owners[depth - 1 :]
        qualified = ".".join((*owners, node.name))
        if isinstance(node, ast.ClassDef):
            title, code = f"class {qualified}", ""
            owners.append(node.name)
        else:
            title = f"{qualified}()"
            start = node.lineno - 1 - len(node.decorator_list)
            code = "\n".join(lines[start : node.end_lineno])
        found.append(Member(title, min(depth, 5), _signature(node),
                            ast.get_docstring(node) or "", code))
    return ast.get_docstring(tree) or "", found


def page(name: str, doc: str, sections: list[Member], fmt: str) -> tuple[str, list[str]]:
    """A page in ``fmt`` ("markdown" or "rst") of a module's sections, and its docstrings."""
    docs = [f"{name}\n\n{doc}"]
    heading = (lambda t, d: "#" * (d + 1) + " " + t) if fmt == "markdown" else _rst_heading
    parts = [heading(f"{name}", 0), doc]
    for member in sections:
        parts.append(heading(member.title, member.depth))
        if not member.code:
            sig = member.signature
            parts.append(f"``{sig}``" if fmt == "rst" else f"`{sig}`")
        parts.append(member.text)
        if member.code.strip():
            if fmt == "markdown":
                parts.append(f"```python\n{member.code}\n```")
            else:
                indented = "\n".join("    " + ln if ln else "" for ln in member.code.split("\n"))
                parts.append(f"Source::\n\n{indented}")
        if member.text:
            docs.append(f"{member.signature}\n\n{member.text}")
    return "\n\n".join(p for p in parts if p) + "\n", docs


def render(name: str, source: str, fmt: str) -> tuple[str, list[str]]:
    """A module's page in ``fmt`` ("markdown" or "rst"), and its docstrings alone."""
    doc, found = members(source)
    return page(name, doc, found, fmt)


def _pages(docs: list[str]) -> list[str]:
    """Docstrings laid out as PDF pages of at most ``_PAGE_LINES`` short Latin-1 lines."""
    lines: list[str] = []
    for doc in docs:
        for line in doc.encode("cp1252", "replace").decode("cp1252").split("\n"):
            while len(line) > _LINE_CHARS:
                cut = line.rfind(" ", 0, _LINE_CHARS)
                cut = cut if cut > 0 else _LINE_CHARS
                lines.append(line[:cut])
                line = line[cut:].lstrip()
            lines.append(line)
        lines.append("")
    return ["\n".join(lines[i : i + _PAGE_LINES]) for i in range(0, len(lines), _PAGE_LINES)]


def _sources(files: int) -> list[tuple[str, str]]:
    """``(name, source)`` of the ``files`` largest parseable modules, sorted by name."""
    sources = []
    for name, path in modules():
        try:
            source = path.read_text("utf-8")
            ast.parse(source)
        except (UnicodeDecodeError, SyntaxError, ValueError):
            continue  # the lib2to3 test data and friends
        sources.append((name, source))
    sources.sort(key=lambda item: (-len(item[1]), item[0]))
    return sorted(sources[:files])


def _write(out: Path, number: int, name: str, folder: str, doc: str,
           sections: list[Member]) -> Path:
    """Write page ``number`` in its format (every 10th rst, every 20th a PDF)."""
    target_dir = out / folder
    target_dir.mkdir(parents=True, exist_ok=True)
    fmt = "rst" if number % 10 == 3 else "markdown"
    text, docs = page(name, doc, sections, fmt)
    if number % 20 == 7 and len(docs) > 1:
        return write_pdf(target_dir / f"{name}.pdf", _pages(docs), title=name)
    target = target_dir / f"{name}.{'rst' if fmt == 'rst' else 'md'}"
    target.write_text(text, "utf-8")
    return target


def _recombined(number: int, pool: list[tuple[str, str, list[Member]]],
                sizes: list[int]) -> tuple[str, str, str, list[Member]]:
    """Page ``number`` past the real ones: (name, folder, docstring, sections).

    Seeded by ``number`` alone, so a page is the same whatever the corpus size. Its name
    joins two real module names; its docstring is a real module's; its sections are runs
    of one to eight consecutive members of random real modules (a class keeps some of its
    methods), until the page is as long as a real page picked at random."""
    rng = random.Random(f"batch-indexer corpus page {number}")
    first, second = rng.choice(pool)[0], rng.choice(pool)[0]
    name = f"{first}.{second.rsplit('.', 1)[-1]}_{number}"
    target = rng.choice(sizes)
    sections: list[Member] = []
    size = 0
    while size < target:
        found = rng.choice(pool)[2]
        if not found:
            continue
        start = rng.randrange(len(found))
        for member in found[start : start + rng.randint(1, 8)]:
            sections.append(member)
            size += len(member.text) + len(member.code) + len(member.title) + 8
    return name, first.split(".")[0], rng.choice(pool)[1], sections


def build(out: Path, files: int = 1000, max_bytes: int | None = None) -> tuple[int, int]:
    """Write the corpus under ``out`` (which must not hold one yet); return (files, bytes).
    With ``max_bytes``, stop at the first file that brings the total to it.

    The first ``REAL_FILES`` are the largest standard-library modules, each rendered as it
    is; past them every page recombines their real sections (see :func:`_recombined`), so
    any ``files`` builds the same first pages and the first 1,000 never change."""
    pool: list[tuple[str, str, list[Member]]] = []
    written = total = 0
    for number, (name, source) in enumerate(_sources(min(files, REAL_FILES))):
        doc, found = members(source)
        pool.append((name, doc, found))
        if max_bytes is not None and total >= max_bytes:
            continue  # the pool still gets every real page
        total += _write(out, number, name, name.split(".")[0], doc, found).stat().st_size
        written += 1
    sizes = [sum(len(m.text) + len(m.code) + len(m.title) + 8 for m in found)
             for _, _, found in pool]
    for number in range(len(pool), files):
        if max_bytes is not None and total >= max_bytes:
            break
        name, folder, doc, sections = _recombined(number, pool, sizes)
        total += _write(out, number, name, folder, doc, sections).stat().st_size
        written += 1
    return written, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to create")
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--max-bytes", type=int, help="stop once the files reach this size")
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out} is not empty")
    files, size = build(args.out, args.files, args.max_bytes)
    print(f"corpus: {files} files, {size / 1e6:.1f} MB in {args.out}")


if __name__ == "__main__":
    main()
