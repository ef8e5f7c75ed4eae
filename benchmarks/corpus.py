"""Build a docs corpus offline and deterministically: the Python standard library as pages.

Every module of the running Python's standard library (``*.py`` under ``sys.prefix``'s
``lib/pythonX.Y``, site-packages left out) is rendered from its syntax tree, never
imported: a Markdown API page per module (module docstring, then per class and function
a heading, the signature, the docstring and the source in a fenced block). Every tenth
page is written as reStructuredText instead, every twentieth as a PDF of its docstrings
(via ``tests/pdfgen.py``), so the three text formats a docs site holds are all read.
The ``--files`` largest modules are kept (ties by path), so the same Python always
builds the same bytes. With the defaults: about 1,000 files and 30 MB (10 M cl100k
tokens) on CPython 3.11.

    python benchmarks/corpus.py OUT [--files 1000]

Other benchmarks import :func:`build`.
"""

from __future__ import annotations

import argparse
import ast
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from pdfgen import write_pdf

_PAGE_LINES = 48
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


def render(name: str, source: str, fmt: str) -> tuple[str, list[str]]:
    """A module's page in ``fmt`` ("markdown" or "rst"), and its docstrings alone."""
    tree = ast.parse(source)
    lines = source.splitlines()
    doc = ast.get_docstring(tree) or ""
    docs = [f"{name}\n\n{doc}"]
    heading = (lambda t, d: "#" * (d + 1) + " " + t) if fmt == "markdown" else _rst_heading
    parts = [heading(f"{name}", 0), doc]
    owners: list[str] = []
    for depth, node in _members(tree.body, 1):
        assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        text = ast.get_docstring(node) or ""
        del owners[depth - 1 :]
        qualified = ".".join((*owners, node.name))
        if isinstance(node, ast.ClassDef):
            parts.append(heading(f"class {qualified}", min(depth, 5)))
            owners.append(node.name)
        else:
            parts.append(heading(f"{qualified}()", min(depth, 5)))
        signature = _signature(node)
        if isinstance(node, ast.ClassDef):
            parts.append(f"``{signature}``" if fmt == "rst" else f"`{signature}`")
            code = ""
        else:
            start = node.lineno - 1 - len(node.decorator_list)
            code = "\n".join(lines[start : node.end_lineno])
        parts.append(text)
        if code.strip():
            if fmt == "markdown":
                parts.append(f"```python\n{code}\n```")
            else:
                indented = "\n".join("    " + line if line else "" for line in code.split("\n"))
                parts.append(f"Source::\n\n{indented}")
        if text:
            docs.append(f"{signature}\n\n{text}")
    return "\n\n".join(p for p in parts if p) + "\n", docs


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


def build(out: Path, files: int = 1000) -> tuple[int, int]:
    """Write the corpus under ``out`` (which must not hold one yet); return (files, bytes)."""
    sources = []
    for name, path in modules():
        try:
            source = path.read_text("utf-8")
            ast.parse(source)
        except (UnicodeDecodeError, SyntaxError, ValueError):
            continue  # the lib2to3 test data and friends
        sources.append((name, source))
    sources.sort(key=lambda item: (-len(item[1]), item[0]))
    chosen = sorted(sources[:files])
    written = total = 0
    for number, (name, source) in enumerate(chosen):
        folder = out / name.split(".")[0]
        folder.mkdir(parents=True, exist_ok=True)
        fmt = "rst" if number % 10 == 3 else "markdown"
        page, docs = render(name, source, fmt)
        if number % 20 == 7 and len(docs) > 1:
            target = write_pdf(folder / f"{name}.pdf", _pages(docs), title=name)
        else:
            target = folder / f"{name}.{'rst' if fmt == 'rst' else 'md'}"
            target.write_text(page, "utf-8")
        written += 1
        total += target.stat().st_size
    return written, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to create")
    parser.add_argument("--files", type=int, default=1000)
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out} is not empty")
    files, size = build(args.out, args.files)
    print(f"corpus: {files} files, {size / 1e6:.1f} MB in {args.out}")


if __name__ == "__main__":
    main()
