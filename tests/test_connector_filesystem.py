"""The filesystem connector: what a scan takes or skips, and what loading a file yields."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest

from indexer.connectors.filesystem import FilesystemSource, load
from indexer.errors import SourceError
from indexer.records import Document, Skip, SourceItem


def write(root: Path, rel: str, content: str | bytes = "text\n") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def scan(root: Path, **options: object) -> tuple[list[SourceItem], list[Skip]]:
    results = list(FilesystemSource(root, **options).scan())  # type: ignore[arg-type]
    return (
        [r for r in results if isinstance(r, SourceItem)],
        [r for r in results if isinstance(r, Skip)],
    )


def rels(root: Path, items: list[SourceItem]) -> list[str]:
    base = root.resolve().as_posix() + "/"
    return [item.uri.removeprefix(base) for item in items]


def loaded(tmp_path: Path, rel: str, content: str | bytes) -> Document | Skip:
    write(tmp_path, rel, content)
    items, skips = scan(tmp_path)
    assert not skips and len(items) == 1
    return load(items[0])


def test_scan_lists_files_sorted_with_uri_format_and_fingerprint(tmp_path: Path) -> None:
    for rel in ["b.md", "a/z.rst", "a/b/c.py", "a/page.html", "notes", "doc.pdf", "data.csv"]:
        write(tmp_path, rel)
    items, skips = scan(tmp_path)
    assert skips == []
    assert rels(tmp_path, items) == [
        "a/b/c.py", "a/page.html", "a/z.rst", "b.md", "data.csv", "doc.pdf", "notes",
    ]
    formats = {rel: item.format for rel, item in zip(rels(tmp_path, items), items, strict=True)}
    assert formats == {
        "a/b/c.py": "code", "a/page.html": "html", "a/z.rst": "rst", "b.md": "markdown",
        "data.csv": "text", "doc.pdf": "pdf", "notes": "text",
    }
    item = items[0]
    st = os.stat(tmp_path / "a/b/c.py")
    assert item.uri == (tmp_path.resolve() / "a/b/c.py").as_posix()
    assert item.path == tmp_path.resolve() / "a/b/c.py"
    assert (item.size, item.mtime_ns) == (st.st_size, st.st_mtime_ns)


def test_missing_root_raises_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError):
        list(FilesystemSource(tmp_path / "nope").scan())


def test_single_file_root_yields_just_that_file(tmp_path: Path) -> None:
    path = write(tmp_path, "only.md", "# Only\n")
    write(tmp_path, "other.md")
    items, skips = scan(path)
    assert [item.uri for item in items] == [path.resolve().as_posix()] and skips == []


def test_gitignore_root_nested_and_negation(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "*.log\nbuild/\nsecret*\n!secret-ok.md\n")
    write(tmp_path, "sub/.gitignore", "!keep.log\ndrafts/\n/local.md\n")
    for rel in [
        "a.md", "a.log", "build/x.md", "secret.md", "secret-ok.md",
        "sub/keep.log", "sub/other.log", "sub/drafts/d.md", "sub/local.md",
        "sub/deeper/local.md", "other/drafts/d.md",
    ]:
        write(tmp_path, rel)
    items, _ = scan(tmp_path)
    assert rels(tmp_path, items) == [
        "a.md", "other/drafts/d.md", "secret-ok.md", "sub/deeper/local.md", "sub/keep.log",
    ]


def test_file_in_ignored_directory_cannot_be_re_included(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "build/\n!build/keep.md\n")
    write(tmp_path, "build/keep.md")
    items, _ = scan(tmp_path)
    assert rels(tmp_path, items) == []


def test_tool_directories_are_always_skipped(tmp_path: Path) -> None:
    for name in [".git", ".indexer", ".hg", ".svn", "node_modules", "__pycache__", ".venv"]:
        write(tmp_path, f"{name}/file.md")
        write(tmp_path, f"deep/{name}/file.md")
    write(tmp_path, "keep.md")
    items, skips = scan(tmp_path)
    assert rels(tmp_path, items) == ["keep.md"] and skips == []


def test_include_and_exclude_globs(tmp_path: Path) -> None:
    for rel in ["a.md", "docs/b.md", "docs/c.txt", "docs/drafts/d.md", "src/e.py"]:
        write(tmp_path, rel)
    items, _ = scan(tmp_path, include=("*.md", "src/"), exclude=("drafts/",))
    assert rels(tmp_path, items) == ["a.md", "docs/b.md", "src/e.py"]
    items, _ = scan(tmp_path, include=("docs/*.md",))
    assert rels(tmp_path, items) == ["docs/b.md"]


def test_links_outside_the_root_are_followed_when_asked_and_a_loop_is_a_skip(
        tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside, "shared.md")
    root = tmp_path / "root"
    write(root, "a/doc.md")
    (root / "a/loop").symlink_to(root, target_is_directory=True)
    (root / "linked").symlink_to(outside, target_is_directory=True)
    (outside / "back").symlink_to(root, target_is_directory=True)
    items, skips = scan(root, follow_links=True)
    assert rels(root, items) == ["a/doc.md", "linked/shared.md"]
    assert items[1].uri == (root.resolve() / "linked/shared.md").as_posix()
    assert sorted(skip.uri.removeprefix(root.resolve().as_posix() + "/") for skip in skips) == [
        "a/loop", "linked/back",
    ]
    assert all("symlink loop" in skip.reason for skip in skips)


def test_links_outside_the_root_are_skipped_with_the_way_to_follow_them(
        tmp_path: Path) -> None:
    secret = write(tmp_path / "home/.ssh", "id_rsa", "-----BEGIN OPENSSH PRIVATE KEY-----\n")
    write(tmp_path / "home/projects", "plan.md", "# Plan\n")
    root = tmp_path / "root"
    write(root, "notes.md")
    (root / "key.txt").symlink_to(secret)
    (root / "projects").symlink_to(tmp_path / "home/projects", target_is_directory=True)
    items, skips = scan(root)
    assert rels(root, items) == ["notes.md"]
    assert {skip.uri.removeprefix(root.resolve().as_posix() + "/"): skip.reason
            for skip in skips} == {
        "key.txt": f"symbolic link to {secret.resolve().as_posix()} outside the source; "
                   "pass --follow-links to index it",
        "projects": f"symbolic link to {(tmp_path / 'home/projects').resolve().as_posix()} "
                    "outside the source; pass --follow-links to index it",
    }
    items, skips = scan(root, follow_links=True)
    assert rels(root, items) == ["key.txt", "notes.md", "projects/plan.md"] and not skips


def test_links_inside_the_root_are_followed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root, "docs/guide.md")
    (root / "latest.md").symlink_to(root / "docs/guide.md")
    (root / "current").symlink_to(Path("docs"), target_is_directory=True)
    items, skips = scan(root)
    assert rels(root, items) == ["current/guide.md", "docs/guide.md", "latest.md"]
    assert not skips


def test_excluded_links_outside_the_root_are_not_reported(tmp_path: Path) -> None:
    write(tmp_path / "outside", "x.md")
    root = tmp_path / "root"
    write(root, "a.md")
    (root / "ext.md").symlink_to(tmp_path / "outside/x.md")
    (root / "ext").symlink_to(tmp_path / "outside", target_is_directory=True)
    items, skips = scan(root, exclude=("ext*",))
    assert rels(root, items) == ["a.md"] and not skips


def test_broken_symlink_is_a_skip(tmp_path: Path) -> None:
    (tmp_path / "dangling.md").symlink_to(tmp_path / "missing.md")
    items, skips = scan(tmp_path)
    assert items == [] and [s.reason for s in skips] == ["broken symlink"]


def test_binary_empty_and_large_files_are_skipped_at_scan(tmp_path: Path) -> None:
    write(tmp_path, "image.PNG", b"\x89PNG\r\n")
    write(tmp_path, "empty.md", "")
    write(tmp_path, "big.txt", "x" * 2000)
    write(tmp_path, "small.txt", "x" * 10)
    items, skips = scan(tmp_path, max_bytes=1000)
    assert rels(tmp_path, items) == ["small.txt"]
    reasons = {Path(s.uri).name: s.reason for s in skips}
    assert reasons["image.PNG"] == "image (.png): no text to index"
    assert reasons["empty.md"] == "empty file"
    assert reasons["big.txt"].startswith("file too large")


def test_binary_content_is_skipped_at_load(tmp_path: Path) -> None:
    result = loaded(tmp_path, "blob.txt", b"abc\x00\x01\x02" * 100)
    assert result == Skip(result.uri, "binary file")


def test_markdown_document_title_hash_and_segment(tmp_path: Path) -> None:
    text = "---\nlayout: x\n---\nIntro\n\n```\n# not a title\n```\n# Real Title\n\nBody\r\n"
    result = loaded(tmp_path, "doc.md", text)
    assert isinstance(result, Document)
    assert result.title == "Real Title"
    assert result.content_hash == hashlib.sha256(text.encode()).hexdigest()
    [segment] = result.segments
    assert segment.format == "markdown" and segment.line_start == 1
    assert segment.text == text.replace("\r\n", "\n")


def test_front_matter_title_wins(tmp_path: Path) -> None:
    result = loaded(tmp_path, "doc.md", '---\ntitle: "From front matter"\n---\n# Heading\n')
    assert isinstance(result, Document) and result.title == "From front matter"


def test_rst_title_and_no_title_for_code(tmp_path: Path) -> None:
    rst = loaded(tmp_path / "r", "guide.rst", ".. comment\n\n=====\nGuide\n=====\n\nText\n")
    assert isinstance(rst, Document) and rst.title == "Guide"
    assert rst.segments[0].format == "rst"
    code = loaded(tmp_path / "c", "tool.py", "# a comment, not a title\nprint(1)\n")
    assert isinstance(code, Document) and code.title == ""
    assert code.segments[0].format == "code"


def test_nul_characters_and_carriage_returns_are_normalised(tmp_path: Path) -> None:
    result = loaded(tmp_path, "a.txt", "x" * 9000 + "\x00a\rb\r\n")
    assert isinstance(result, Document)
    assert result.segments[0].text == "x" * 9000 + "a\nb\n"


def test_cp1252_text_is_decoded(tmp_path: Path) -> None:
    text = "Café crème, naïve façade — “quoted” for 5 €.\nÜber Straße.\n"
    result = loaded(tmp_path, "legacy.txt", text.encode("cp1252"))
    assert isinstance(result, Document) and result.segments[0].text == text


def test_utf16_with_bom_is_decoded(tmp_path: Path) -> None:
    text = "Grüße aus Köln\n日本語も\n"
    result = loaded(tmp_path, "wide.txt", text.encode("utf-16"))
    assert isinstance(result, Document) and result.segments[0].text == text


def test_undecodable_garbage_is_skipped(tmp_path: Path) -> None:
    rng = random.Random(7)
    garbage = bytes(rng.randrange(1, 256) for _ in range(4000))
    result = loaded(tmp_path, "garbage.txt", garbage)
    assert isinstance(result, Skip) and result.reason.startswith("could not decode text (tried")


def test_whitespace_only_file_is_empty_after_extraction(tmp_path: Path) -> None:
    result = loaded(tmp_path, "blank.md", " \n\n\t\n")
    assert isinstance(result, Skip) and result.reason == "empty after extraction"


def test_vanished_file_is_a_skip(tmp_path: Path) -> None:
    path = write(tmp_path, "gone.md")
    [item] = scan(tmp_path)[0]
    path.unlink()
    assert load(item) == Skip(item.uri, "file vanished since the scan")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_and_directory_are_skips(tmp_path: Path) -> None:
    write(tmp_path, "locked.md").chmod(0)
    write(tmp_path, "closed/inner.md")
    (tmp_path / "closed").chmod(0)
    try:
        items, skips = scan(tmp_path)
    finally:
        (tmp_path / "closed").chmod(0o755)
    assert items == []
    assert {Path(s.uri).name: s.reason for s in skips} == {
        "locked.md": "unreadable: permission denied",
        "closed": "unreadable directory: Permission denied",
    }


def test_permission_errors_become_skips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "closed/inner.md")
    write(tmp_path, "locked.md")
    [item] = [i for i in scan(tmp_path)[0] if i.path.name == "locked.md"]

    def denied(*args: object, **kwargs: object) -> object:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)
    assert load(item) == Skip(item.uri, "unreadable: permission denied")
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)
    real_scandir = os.scandir
    monkeypatch.setattr(
        os, "scandir", lambda p: denied() if Path(p).name == "closed" else real_scandir(p)
    )
    items, skips = scan(tmp_path)
    assert items == []
    assert {Path(s.uri).name: s.reason for s in skips} == {
        "locked.md": "unreadable: permission denied",
        "closed": "unreadable directory: Permission denied",
    }


def test_special_files_are_skipped(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.md")
    items, skips = scan(tmp_path)
    assert items == [] and [s.reason for s in skips] == ["not a regular file"]


@pytest.mark.parametrize("name", ["a.md", "a.rst", "a.html", "a.pdf", "a.py", "a.txt", "a"])
def test_load_never_raises_on_random_bytes(tmp_path: Path, name: str) -> None:
    rng = random.Random(name)
    for round_ in range(20):
        size = rng.choice([1, 10, 1000, 20000])
        data = bytes(rng.randrange(0 if round_ % 2 else 1, 256) for _ in range(size))
        (tmp_path / name).write_bytes(data)
        [item] = scan(tmp_path)[0]
        result = load(item)
        assert isinstance(result, Document | Skip)


def test_hidden_files_are_left_out_unless_asked_for(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("OPENAI_API_KEY=sk-secret\n")
    (tmp_path / ".config").mkdir()
    (tmp_path / ".config" / "notes.md").write_text("# Notes\n")
    (tmp_path / "visible.md").write_text("# Visible\n")
    names = {Path(i.uri).name for i in FilesystemSource(tmp_path).scan()}
    assert names == {"visible.md"}
    names = {Path(i.uri).name for i in FilesystemSource(tmp_path, hidden=True).scan()}
    assert names == {".env", "notes.md", "visible.md"}


def test_names_that_are_not_utf8_get_a_lossless_file_uri(tmp_path: Path) -> None:
    from urllib.parse import unquote_to_bytes

    root = tmp_path / "root"
    write(root, "plain.md", "# Plain\n")
    write(root, "50% off.md", "# Sale\n")
    base = os.fsencode(root)
    os.makedirs(base + b"/d\xff")
    for name, content in [(b"/caf\xe9.md", b"# Caf\xc3\xa9\n"), (b"/d\xff/x%41.txt", b"x\n"),
                          (b"/img\xe9.png", b"\x89PNG")]:
        with open(base + name, "wb") as file:
            file.write(content)
    items, skips = scan(root)
    prefix = "file://" + root.resolve().as_posix()
    assert [item.uri for item in items] == [
        root.resolve().as_posix() + "/50% off.md",
        f"{prefix}/caf%E9.md",
        f"{prefix}/d%FF/x%2541.txt",
        root.resolve().as_posix() + "/plain.md",
    ]
    assert [skip.uri for skip in skips] == [f"{prefix}/img%E9.png"]
    for item in items:
        item.uri.encode("utf-8")
        if item.uri.startswith("file://"):
            assert unquote_to_bytes(item.uri.removeprefix("file://")) == os.fsencode(item.path)
    document = load(items[1])
    assert isinstance(document, Document)
    assert document.uri == f"{prefix}/caf%E9.md" and document.title == "Café"


def test_a_link_target_that_is_not_utf8_is_named_by_its_uri(tmp_path: Path) -> None:
    os.makedirs(os.fsencode(tmp_path) + b"/out\xe9")
    with open(os.fsencode(tmp_path) + b"/out\xe9/k", "w") as file:
        file.write("secret\n")
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(os.fsencode(tmp_path) + b"/out\xe9/k", os.fsencode(root) + b"/k.txt")
    _, [skip] = scan(root)
    target = "file://" + tmp_path.resolve().as_posix() + "/out%E9/k"
    assert skip.reason.startswith(f"symbolic link to {target} outside the source")
