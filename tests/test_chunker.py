"""The chunker: bounded, faithful to the text, structured, and stable under edits."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer.chunking import tokens
from indexer.chunking.chunker import ChunkerSettings, breadcrumb, chunk_document, clean_text
from indexer.chunking.packing import Packer, context_tokens, pack
from indexer.chunking.structure import Outline, sections
from indexer.errors import ConfigError
from indexer.records import Chunk, Document, Segment

FORMATS = ("markdown", "rst", "code", "text")


def chunk(text: str, fmt: str = "markdown", title: str = "", **limits: int) -> list[Chunk]:
    doc = Document("file:///doc", title, (Segment(text, fmt),), "hash")
    return chunk_document(doc, ChunkerSettings(**limits))


def visible(text: str) -> str:
    return "".join(char for char in text if char not in tokens.WHITESPACE)


def assert_well_formed(chunks: list[Chunk], limit: int) -> None:
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert c.tokens == tokens.count(c.embed_text)
        assert c.tokens <= limit
        assert c.text.strip(tokens.WHITESPACE)
        assert "\x00" not in c.embed_text


# -- every chunk within the budget, whatever the text -------------------------------

FRAGMENTS = [
    "word ",
    "the end. ",
    "Question? ",
    "\n",
    "\n\n",
    "\n\n\n",
    "  ",
    "\t",
    "\r\n",
    "\x00",
    "x" * 3000,
    "中文字符" * 400,
    "😀👍🏽" * 300,
    "value = compute(" + "arg, " * 400 + ")\n",
    "```python\n",
    "```\n",
    "# Heading\n",
    "## Sub\n",
    "Title\n=====\n",
    "----\n",
    "- item\n",
    "| a | b |\n",
    ".. note::\n   indented\n",
    "Literal::\n\n    code\n",
    "<|endoftext|>",
    "\u2028",
    "e\u0301",
    "。",
    "‼",
    "    indented line\n",
    "def f():\n",
    "\r",
    "\ud800",
    "\x1c",
]
documents = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=40)), max_size=60).map(
    "".join
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, st.sampled_from(FORMATS), st.sampled_from([16, 40, 128, 512]), st.text())
def test_every_chunk_fits_and_is_counted_exactly(
    text: str, fmt: str, limit: int, title: str
) -> None:
    chunks = chunk(text, fmt, title=title, max_tokens=limit)
    assert_well_formed(chunks, limit)
    if fmt in ("text", "code"):
        # nothing is lost: the chunks hold every visible character, in order
        clean = clean_text(text)
        assert "".join(visible(c.text) for c in chunks) == visible(clean)


def test_hard_limit_wins_over_max_tokens() -> None:
    text = "\n\n".join(f"Paragraph {i} " + "lorem ipsum dolor " * 300 for i in range(12))
    chunks = chunk(text, "text", max_tokens=100_000, hard_limit=4000)
    assert_well_formed(chunks, 4000)
    assert max(c.tokens for c in chunks) > 2000


def test_a_huge_word_is_cut_into_token_pieces() -> None:
    word = "".join(random.Random(1).choices("abcdefghijklmnopqrstuvwxyz0123456789+/", k=20_000))
    chunks = chunk(word, "text", max_tokens=200)
    assert_well_formed(chunks, 200)
    assert "".join(c.text for c in chunks) == word


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_a_long_paragraph_that_fits_is_one_chunk_from_its_first_word(fmt: str) -> None:
    """A block of over three characters per token of the budget is counted whole first."""
    paragraph = "   " + " the" * 30 + ". And" + " the" * 25 + "."
    chunks = chunk(paragraph + "\n", fmt, max_tokens=64)
    assert len(paragraph) > 3 * 64
    assert_well_formed(chunks, 64)
    assert [c.text for c in chunks] == [paragraph.strip()]


def test_blank_and_nul_only_documents_have_no_chunks() -> None:
    assert chunk(" \n\n\t \x00\x00 \n", "text") == []
    assert chunk("", "markdown") == []


def test_settings_are_validated() -> None:
    with pytest.raises(ConfigError):
        ChunkerSettings(max_tokens=8)
    with pytest.raises(ConfigError):
        ChunkerSettings(target_tokens=0)
    assert ChunkerSettings(max_tokens=10_000).limit == 8000


def test_chunking_is_deterministic() -> None:
    text = prose_document(random.Random(3), 40)
    assert chunk(text, "text") == chunk(text, "text")


# -- structure -----------------------------------------------------------------------

GUIDE = """\
# Guide

Welcome to the guide. It explains everything.

## Install

Run the installer:

```bash
pip install batch-indexer

indexer --help
```

## Use

### Search

Search with a query.

Setext Heading
--------------

Under a setext heading.
"""


def test_markdown_headings_give_heading_path_and_context() -> None:
    chunks = chunk(GUIDE, "markdown", title="The Manual")
    by_text = {c.text.splitlines()[0]: c for c in chunks}
    welcome = by_text["Welcome to the guide. It explains everything."]
    assert welcome.heading_path == ("Guide",)
    assert welcome.context == "The Manual › Guide"
    search = by_text["Search with a query."]
    assert search.heading_path == ("Guide", "Use", "Search")
    assert search.context == "The Manual › Guide › Use › Search"
    assert search.embed_text == "The Manual › Guide › Use › Search\n\nSearch with a query."
    setext = by_text["Under a setext heading."]
    assert setext.heading_path == ("Guide", "Setext Heading")


def test_title_equal_to_first_heading_is_not_repeated() -> None:
    chunks = chunk(GUIDE, "markdown", title="Guide")
    assert chunks[0].context == "Guide"
    assert breadcrumb("guide", ("Guide", "Install"), 100) == "Guide › Install"
    assert breadcrumb("", (), 100) == ""


def test_headings_always_start_a_new_chunk() -> None:
    text = "# A\n\nalpha text\n\n# B\n\nbeta text\n"
    assert [c.text for c in chunk(text, "markdown", max_tokens=500)] == ["alpha text", "beta text"]


def test_code_fence_stays_whole() -> None:
    chunks = chunk(GUIDE, "markdown", max_tokens=60)
    fence = "```bash\npip install batch-indexer\n\nindexer --help\n```"
    assert any(fence in c.text for c in chunks)


def test_oversized_code_fence_is_split_between_lines() -> None:
    body = "\n".join(f"    result_{i} = compute({i}, other_{i})" for i in range(200))
    chunks = chunk(f"# Code\n\n```python\n{body}\n```\n", "markdown", max_tokens=120)
    assert_well_formed(chunks, 120)
    assert len(chunks) > 5
    source_lines = set(body.splitlines()) | {"```python", "```"}
    for c in chunks:
        assert set(c.text.splitlines()) <= source_lines


def test_long_breadcrumb_is_shortened() -> None:
    path = tuple(f"Heading number {i}" + " very long words" * 20 for i in range(6))
    context = breadcrumb("A Title", path, 64)
    assert 0 < tokens.count(context) <= 64
    chunks = chunk_document(
        Document("u", "A Title", (Segment("Some text.", "text", heading_path=path),), "h"),
        ChunkerSettings(max_tokens=256),
    )
    assert chunks[0].heading_path == path
    assert tokens.count(chunks[0].context) <= 64


RST = """\
=========
 Project
=========

Intro text.

Usage
=====

Call it like this::

    indexer sync
    indexer search "query"

Details
-------

Some details.

.. note::

   A note directive.

Another Part
============

Final words.
"""


def test_rst_titles_nest_by_order_of_first_appearance() -> None:
    chunks = chunk(RST, "rst", max_tokens=500)
    paths = {c.text.splitlines()[0]: c.heading_path for c in chunks}
    assert paths["Intro text."] == ("Project",)
    assert paths["Call it like this::"] == ("Project", "Usage")
    assert paths["Some details."] == ("Project", "Usage", "Details")
    assert paths["Final words."] == ("Project", "Another Part")


def test_rst_literal_block_stays_with_its_paragraph() -> None:
    chunks = chunk(RST, "rst", max_tokens=500)
    usage = next(c for c in chunks if c.heading_path == ("Project", "Usage"))
    assert 'Call it like this::\n\n    indexer sync\n    indexer search "query"' in usage.text


def test_pdf_pages_and_html_sections_are_carried() -> None:
    doc = Document(
        "file:///a.pdf",
        "Report",
        (
            Segment("First page text.", "text", page=1),
            Segment("Second page text.\n\nMore.", "text", page=2),
            Segment("Section body.", "text", heading_path=("Chapter", "Part")),
        ),
        "h",
    )
    chunks = chunk_document(doc, ChunkerSettings())
    assert [(c.text, c.page) for c in chunks[:2]] == [
        ("First page text.", 1),
        ("Second page text.\n\nMore.", 2),
    ]
    assert chunks[2].heading_path == ("Chapter", "Part")
    assert chunks[2].context == "Report › Chapter › Part"


def test_line_ranges_locate_the_chunk_in_the_source() -> None:
    text = prose_document(random.Random(5), 60).replace(". ", ".\n", 40)
    offset = 7
    doc = Document("u", "", (Segment(text, "text", line_start=offset),), "h")
    chunks = chunk_document(doc, ChunkerSettings(max_tokens=100))
    source = text.split("\n")
    assert len(chunks) > 10
    for c in chunks:
        assert c.line_start is not None and c.line_end is not None
        lines = source[c.line_start - offset : c.line_end - offset + 1]
        assert c.text in "\n".join(lines)
        assert c.text.split("\n")[0] in lines[0]
        assert c.text.split("\n")[-1] in lines[-1]


def test_crlf_and_nul_do_not_shift_lines() -> None:
    text = "first para\r\n\r\nsecond\x00 para\r\n\r\n" + "third para. " * 100
    chunks = chunk(text, "text", max_tokens=64)
    assert chunks[0].text.startswith("first para\n\nsecond para")
    assert chunks[0].line_start == 1
    third = next(c for c in chunks if c.text.startswith("third"))
    assert third.line_start == third.line_end == 5
    assert all("\r" not in c.text for c in chunks)


# -- stability under edits -----------------------------------------------------------

WORDS = [
    *("index", "chunk", "token", "vector", "batch", "model", "query", "search", "store"),
    *("ledger", "shard", "wave", "budget", "paragraph", "heading", "section", "document"),
    *("boundary", "anchor", "stable", "edit", "insert", "delete", "file", "the", "a", "of"),
    *("to", "and", "in", "is", "that", "for", "with", "as", "on", "by", "it", "this", "be"),
    *("are", "from", "at", "or", "an", "which"),
]


def sentence(rng: random.Random) -> str:
    words = rng.choices(WORDS, k=rng.randint(4, 22))
    return " ".join(words).capitalize() + rng.choice("...?!")


def paragraph(rng: random.Random) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(1, 6)))


def prose_document(rng: random.Random, paragraphs: int) -> str:
    return "\n\n".join(paragraph(rng) for _ in range(paragraphs))


def changed(before: list[Chunk], after: list[Chunk]) -> int:
    """How many of the old chunks no longer exist byte for byte."""
    return len({c.embed_text for c in before} - {c.embed_text for c in after})


def flat_paragraphs(seed: int) -> list[str]:
    rng = random.Random(seed)
    return [paragraph(rng) for _ in range(170)]


def markdown_sections(seed: int) -> list[str]:
    rng = random.Random(seed)
    blocks: list[str] = []
    for number in range(14):
        blocks.append(f"## Section {number}")
        blocks.extend(paragraph(rng) for _ in range(rng.randint(4, 12)))
    return blocks


@pytest.mark.parametrize("fmt", ["text", "markdown"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_inserting_a_paragraph_near_the_top_keeps_other_chunks(fmt: str, seed: int) -> None:
    blocks = flat_paragraphs(seed) if fmt == "text" else markdown_sections(seed)
    before = chunk("\n\n".join(blocks), fmt)
    assert len(before) >= 40
    inserted = [*blocks[:3], paragraph(random.Random(-seed)), *blocks[3:]]
    after = chunk("\n\n".join(inserted), fmt)
    assert changed(before, after) <= len(before) // 10
    assert_well_formed(after, 256)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_editing_one_paragraph_changes_one_or_two_chunks(seed: int) -> None:
    paragraphs = flat_paragraphs(seed)
    before = chunk("\n\n".join(paragraphs), "text")
    for index in (5, 60, 120):
        edited = list(paragraphs)
        edited[index] = edited[index].replace(" ", " extra ", 1)
        assert 1 <= changed(before, chunk("\n\n".join(edited), "text")) <= 2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_deleting_one_paragraph_changes_one_or_two_chunks(seed: int) -> None:
    paragraphs = flat_paragraphs(seed)
    before = chunk("\n\n".join(paragraphs), "text")
    for index in (5, 60, 120):
        remaining = paragraphs[:index] + paragraphs[index + 1 :]
        assert 1 <= changed(before, chunk("\n\n".join(remaining), "text")) <= 2


def python_module(seed: int) -> list[str]:
    rng = random.Random(seed)
    blocks: list[str] = []
    for number in range(80):
        lines = [f"    x{k} = step_{k}(x{k - 1}, {rng.randint(0, 999)})" for k in range(1, 12)]
        body = "\n".join(lines[: rng.randint(2, 11)])
        if number % 5 == 0:
            blocks.append(f'class Thing{number}:\n    """Things."""')
            method = body.replace("\n", "\n    ")
            blocks.append(f"    def method(self, x0):\n    {method}")
        else:
            blocks.append(f"def func_{number}(x0):\n{body}\n    return x1")
    return blocks


@pytest.mark.parametrize("seed", [1, 2])
def test_code_is_cut_between_top_level_blocks_and_stays_stable(seed: int) -> None:
    blocks = python_module(seed)
    source = "\n\n".join(blocks)
    before = chunk(source, "code")
    assert_well_formed(before, 256)
    top_level = [c for c in before if not c.text.startswith(" ")]
    assert len(top_level) >= 0.7 * len(before)
    lines = source.split("\n")
    for c in before:
        assert c.line_start is not None and c.line_end is not None
        assert c.text in "\n".join(lines[c.line_start - 1 : c.line_end])
    edited = list(blocks)
    edited[40] = edited[40].replace("(", "( ", 1)
    assert changed(before, chunk("\n\n".join(edited), "code")) <= 2
    inserted = [*blocks[:2], "def new():\n    return 1", *blocks[2:]]
    assert changed(before, chunk("\n\n".join(inserted), "code")) <= 2


def test_a_document_of_headings_only_is_still_indexed() -> None:
    doc = Document("u", "", (Segment("# Release notes\n\n## Version 2\n", "markdown"),), "h")
    chunks = chunk_document(doc, ChunkerSettings())
    assert len(chunks) == 1 and "Release notes" in chunks[0].text


def test_refit_splits_only_what_the_model_counts_as_too_long() -> None:
    from indexer.chunking.chunker import refit

    short = "A short paragraph about tea."
    long = " ".join(f"word{i}" for i in range(120))
    doc = Document("u", "Guide", (Segment(f"# Guide\n\n{short}\n\n{long}\n", "markdown"),), "h")
    settings = ChunkerSettings(max_tokens=400)
    chunks = chunk_document(doc, settings)

    def chars(texts: list[str]) -> list[int]:  # a stricter "model tokenizer"
        return [len(t) // 2 for t in texts]

    refitted = refit(doc, chunks, settings, chars, limit=150)
    assert all(n <= 150 for n in chars([c.embed_text for c in refitted]))
    assert [c.ordinal for c in refitted] == list(range(len(refitted)))
    assert {c.text for c in chunks if chars([c.embed_text])[0] <= 150} <= {
        c.text for c in refitted}
    words = " ".join(c.text for c in refitted).split()
    assert words == " ".join(c.text for c in chunks).split()  # nothing lost, order kept
    assert len(refitted) > len(chunks)
    assert all(c.context == chunks[0].context for c in refitted)


_AWKWARD = ["Guide", "Parser()", "3 steps", "'s", "__init__", "日本語", "a › b", "…", "x\u0301",
            "<|endoftext|>", "C++", "?!", "٣", "ß-Straße", "e.g.", "don'", "›", "1234", "Usage:",
            "«Ça»", "😀", "ﬁ"]


@given(st.lists(st.sampled_from(_AWKWARD), min_size=1, max_size=5))
@settings(max_examples=300, deadline=None)
def test_breadcrumb_tokens_counted_part_by_part_match_the_tokenizer(parts: list[str]) -> None:
    chunks = chunk("Body text here.", title=parts[0], max_tokens=512)
    headed = chunk("# " + "\n\n# ".join(parts[1:]) + "\n\nBody text.", title=parts[0]) \
        if len(parts) > 1 else chunks
    for c in chunks + headed:
        assert c.tokens == tokens.count(c.embed_text)


def test_chunk_context_off_embeds_the_passage_alone() -> None:
    text = "# Install\n\nRun the installer, then restart.\n\n## Linux\n\nUse the package.\n"
    doc = Document("u", "Manual", (Segment(text, "markdown"),), "h")
    with_context = chunk_document(doc, ChunkerSettings(max_tokens=64))
    without = chunk_document(doc, ChunkerSettings(max_tokens=64, context=False))
    assert all(c.context for c in with_context)
    assert [c.text for c in without] == [c.text for c in with_context]
    assert all(c.context == "" and c.embed_text == c.text for c in without)
    assert all(c.tokens == tokens.count(c.text) for c in without)
    assert sum(c.tokens for c in without) < sum(c.tokens for c in with_context)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, st.sampled_from(FORMATS), st.sampled_from([16, 40, 128, 512]))
def test_a_section_of_one_block_is_cut_as_the_packer_cuts_it(
    text: str, fmt: str, limit: int
) -> None:
    """The shortcut for one-block sections changes no chunk and no count."""
    options = ChunkerSettings(max_tokens=limit)
    text = clean_text(text)
    for section in sections(text, fmt, Outline()):
        head = context_tokens(breadcrumb("A title", section.heading_path, options.limit // 4))
        assert pack(text, section, head, options) == Packer(text, section, head, options).cuts()


@pytest.mark.parametrize(("text", "expected"), [
    ("Title\n=====\n\nBody.\n", [(("Title",), [("Body.", "prose")])]),
    ("- item\n---\n\nafter\n", [((), [("- item", "lines"), ("after", "prose")])]),
    ("```a`b\ncode\n```\nmore\n", [((), [("```a`b\ncode", "prose"), ("```\nmore\n", "lines")])]),
    ("~~~ `x`\ncode\n\n# Not a heading\n",
     [((), [("~~~ `x`\ncode\n\n# Not a heading\n", "lines")])]),
    ("  # Head #\ntext\n\n\n \t\ntail", [(("Head",), [("text", "prose"), ("tail", "prose")])]),
    ("---\ntitle: x\n---\n# H\nbody", [((), [("---\ntitle: x\n---", "lines")]),
                                       (("H",), [("body", "prose")])]),
    ("para\n    ```\nnot a fence\n", [((), [("para\n    ```\nnot a fence", "prose")])]),
    ("#tag\n####### seven\n***\nx", [((), [("#tag\n####### seven", "prose"), ("x", "prose")])]),
    ("# H\n\n \t\n\npara\n```\ncode\n```\n\n  \n\n# G\n\n",
     [(("H",), [("para", "prose"), ("```\ncode\n```", "lines")])]),
    ("```\ncode\n```\n\n\nafter\n# H\n\n",
     [((), [("```\ncode\n```", "lines"), ("after", "prose")])]),
])
def test_markdown_reader_finds_headings_fences_and_rules(
    text: str, expected: list[tuple[tuple[str, ...], list[tuple[str, str]]]]
) -> None:
    """Only blank lines, fences, ATX and setext headings, and rules end a paragraph (the
    reader skips every other line without looking at it); a fence left open runs to the
    end of the text."""
    found = [(s.heading_path, [(text[b.start : b.end], b.kind) for b in s.blocks])
             for s in sections(text, "markdown", Outline())]
    assert found == expected
