"""HTML pages become heading sections of readable text, without page chrome."""

from __future__ import annotations

from pathlib import Path

from indexer.connectors.filesystem import FilesystemSource, load
from indexer.connectors.formats import html
from indexer.records import Document, SourceItem

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title> The  Guide </title>
<style>body { color: red }</style><script>var tracking = 1;</script></head>
<body>
<header><div class="logo">ACME</div>
<nav><a href="/">Home</a> <a href="/blog">Blog</a></nav></header>
<div role="navigation">Side menu</div>
<p>Intro with <b>bold</b> text
spanning two source lines.</p>
<h1>Install<a class="headerlink" href="#install">¶</a></h1>
<p>First paragraph.</p>
<p>Second paragraph<br>with a line break.</p>
<pre>
def f():
    return  1
</pre>
<h2>From source</h2>
<ul><li>one</li><li>two <code>x</code></li></ul>
<table><tr><th>Name</th><th>Value</th></tr><tr><td>a</td><td>1</td></tr></table>
<h3>Deeper</h3><p>deep text</p>
<h2>From a wheel</h2><p>wheel text<!-- hidden comment --></p>
<h1>Usage</h1>
<article><header><h2>Article heading</h2></header><p>article text</p></article>
<footer>Copyright 2024</footer>
<script>alert("x")</script>
</body></html>
"""


def sections(markup: str) -> dict[tuple[str, ...], str]:
    return {s.heading_path: s.text for s in html.extract(markup).sections}


def test_sections_follow_the_heading_stack() -> None:
    assert sections(PAGE) == {
        (): "Intro with bold text spanning two source lines.",
        ("Install",): (
            "First paragraph.\n\nSecond paragraph\nwith a line break.\n\n"
            "def f():\n    return  1"
        ),
        ("Install", "From source"): "- one\n- two x\n\nName | Value\na | 1",
        ("Install", "From source", "Deeper"): "deep text",
        ("Install", "From a wheel"): "wheel text",
        ("Usage", "Article heading"): "article text",
    }


def test_scripts_styles_navigation_and_page_chrome_are_dropped() -> None:
    text = "\n".join(sections(PAGE).values())
    chrome = ["tracking", "color", "alert", "Home", "Blog", "ACME", "Side menu", "Copyright", "¶"]
    for noise in chrome:
        assert noise not in text
    assert "hidden comment" not in text


def test_segments_are_plain_text_in_document_order() -> None:
    segments = html.extract(PAGE).sections
    assert all(s.format == "text" and s.page is None for s in segments)
    assert [s.heading_path[-1:] for s in segments][1:3] == [("Install",), ("From source",)]


def test_title_from_title_tag_else_first_h1() -> None:
    assert html.extract(PAGE).title == "The Guide"
    assert html.extract("<body><p>x</p><h1>First <em>H1</em></h1><h1>Second</h1>").title == (
        "First H1"
    )
    assert html.extract("<p>no headings</p>").title is None


def test_main_element_limits_the_text() -> None:
    markup = "<body><div>sidebar junk</div><main><h1>T</h1><p>kept</p></main><div>more junk</div>"
    assert sections(markup) == {("T",): "kept"}


def test_loaded_html_document_uses_declared_charset(tmp_path: Path) -> None:
    markup = '<html><head><meta charset="windows-1252"><title>Caf\xe9</title></head>'
    markup += "<body><h1>Men\xfc</h1><p>cr\xe8me br\xfbl\xe9e \x93quoted\x94</p></body></html>"
    (tmp_path / "page.htm").write_bytes(markup.encode("latin-1"))
    [item] = list(FilesystemSource(tmp_path).scan())
    assert isinstance(item, SourceItem) and item.format == "html"
    document = load(item)
    assert isinstance(document, Document)
    assert document.title == "Café"
    [segment] = document.segments
    assert segment.heading_path == ("Menü",)
    assert segment.text == "crème brûlée “quoted”"


def test_page_without_text_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "empty.html").write_text("<html><head><script>x()</script></head><body> </body>")
    [item] = list(FilesystemSource(tmp_path).scan())
    assert isinstance(item, SourceItem)
    result = load(item)
    assert not isinstance(result, Document) and result.reason == "empty after extraction"


def test_deeply_nested_markup_is_read() -> None:
    depth = 5000
    page = html.extract("<div>" * depth + "<h2>Deep</h2><p>bottom</p>" + "</div>" * depth)
    assert [(s.heading_path, s.text) for s in page.sections] == [(("Deep",), "bottom")]


def test_an_unclosed_heading_keeps_the_text_it_swallowed(tmp_path: Path) -> None:
    markup = "<html><body><h1>Title<p>para one</p><p>para two</p></body></html>"
    assert sections(markup) == {("Title",): "para one\n\npara two"}
    assert html.extract(markup).title == "Title"
    (tmp_path / "page.html").write_text(markup)
    [item] = list(FilesystemSource(tmp_path).scan())
    assert isinstance(item, SourceItem)
    document = load(item)
    assert isinstance(document, Document), document
    assert document.title == "Title"


def test_malformed_pages_still_yield_their_text() -> None:
    assert sections("<p>one<p>two<h2>Prices<table><tr><td>tea</td><td>2</td></tr></table>") == {
        (): "one\n\ntwo", ("Prices",): "tea | 2",
    }
    assert sections("<table><tr><td><h2>Menu</h2></td><td>soup</td></tr>"
                    "<tr><td>bread</td></tr></table>") == {("Menu",): "soup\nbread"}
    assert sections("<h1>Guide<h2>Install<p>run it</p><h2>Use<ul><li>search") == {
        ("Guide", "Install"): "run it", ("Guide", "Use"): "- search",
    }
    assert sections("<h3>Notes<div>first</div><div>second</div>") == {
        ("Notes",): "first\n\nsecond",
    }
    assert html.extract("<title>Page<body><p>text</p>").title == "Page"
    assert sections("<title>Page<body><p>text</p>") == {(): "text"}


def test_headings_that_wrap_their_text_in_blocks_or_breaks_keep_it() -> None:
    assert sections("<h1><div>Wrapped</div></h1><p>body</p>") == {("Wrapped",): "body"}
    assert sections("<h1>Main<br>subtitle <em>here</em></h1><p>body</p>") == {
        ("Main subtitle here",): "body",
    }


TEXINFO = """<html><head><title>Closure Example</title></head>
<body lang="en">
<div class="section" id="Closure-Example">
<div class="header">
<p>
Next: <a href="Thread-Safety.html" accesskey="n" rel="next">Thread Safety</a>, Previous:
<a href="The-Closure-API.html" rel="prev">The Closure API</a>, Up: <a href="Using.html"
rel="up">Using libffi</a> &nbsp; [<a href="Index.html" title="Index" rel="index">Index</a>]</p>
</div>
<hr>
<h3 class="section">2.6 Closure Example</h3>
<p>A trivial example that creates a new <code>puts</code>.</p>
<div class="nav-panel"><p>Next: <a href="a.html" rel="next">A</a>, Up: <a href="b.html"
rel="up">B</a></p></div>
<p class="links"><a href="/">Home</a> | <a href="/docs">Docs</a> | <a href="/blog">Blog</a></p>
<p>Read <a href="x.html">the manual</a> and <a href="y.html">the FAQ</a> before asking.</p>
</div></body></html>
"""


def test_generated_navigation_bars_do_not_reach_the_text() -> None:
    assert sections(TEXINFO) == {
        ("2.6 Closure Example",): (
            "A trivial example that creates a new puts.\n\n"
            "Read the manual and the FAQ before asking."
        ),
    }


LOCATED = """<!doctype html>
<html><head><title>Lines</title></head>
<body>
<nav><a href="/">Home</a></nav>
<h1>Install</h1>

<p>The passage on
lines seven to
nine of the file.</p>
<ul>
  <li>item on eleven</li>
  <li>item on twelve<br>
      continued on thirteen</li>
</ul>
<pre>
code on sixteen
code on seventeen
</pre>
</body></html>
"""


def test_sections_know_the_source_lines_of_their_text() -> None:
    [segment] = html.extract(LOCATED).sections
    assert segment.line_start == 7
    text_lines = segment.text.split("\n")
    assert len(text_lines) == len(segment.lines)
    located = dict(zip(text_lines, segment.lines, strict=True))
    assert located["The passage on lines seven to nine of the file."] == (7, 9)
    assert located["- item on eleven"] == (11, 11)
    assert located["continued on thirteen"] == (13, 13)
    assert located["code on sixteen"] == (16, 16)
    assert located["code on seventeen"] == (17, 17)


def test_html_passages_in_a_folder_are_cited_at_their_lines(tmp_path: Path) -> None:
    from indexer.chunking.chunker import ChunkerSettings, chunk_document

    filler = "\n".join(f"<p>Paragraph {n} says something about topic {n}.</p>"
                       for n in range(40))
    (tmp_path / "page.html").write_text(LOCATED.replace("</body>", filler + "\n</body>"))
    [item] = list(FilesystemSource(tmp_path).scan())
    assert isinstance(item, SourceItem)
    document = load(item)
    assert isinstance(document, Document)
    chunks = chunk_document(document, ChunkerSettings(max_tokens=64, target_tokens=32))
    source = (tmp_path / "page.html").read_text().split("\n")
    assert chunks[0].line_start == 7
    for chunk in chunks:
        assert chunk.line_start is not None and chunk.line_end is not None
        cited = "\n".join(source[chunk.line_start - 1:chunk.line_end])
        first_words = chunk.text.split()[:2]
        last_word = chunk.text.split()[-1]
        assert " ".join(first_words).lstrip("- ") in " ".join(cited.split()), (chunk, cited)
        assert last_word in cited, (chunk, cited)
