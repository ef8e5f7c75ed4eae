"""Web sources: a crawl of a real HTTP server on 127.0.0.1, synced through the Index API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer import Index
from indexer import config as configfile
from indexer.connectors.contract import Connector, ConnectorContext
from indexer.connectors.registry import connector_for
from indexer.errors import ConfigError, SourceError
from indexer.records import Document, Skip, SourceItem
from pdfgen import make_pdf
from support import store_rows
from website import Page, Site, serve

NAV = """<div class="header"><p>
Next: <a href="coffee.html" rel="next">Coffee</a>, Up: <a href="./" rel="up">Guide</a>
&nbsp; [<a href="index.html" rel="index">Index</a>]</p></div>
<nav><a href="tea.html">Tea</a> <a href="coffee.html">Coffee</a> Sitewide menu</nav>
"""

TEA = f"""<!doctype html>
<html><head><title>Tea</title></head>
<body>
{NAV}<h1>Tea</h1>

<p>Green tea is steeped at
eighty degrees for two minutes
to keep it from turning bitter.</p>
<p><a href="loop/a.html">loop</a></p>
</body></html>
"""
TEA_LINES = (10, 13)  # the two paragraphs' lines in TEA


def html(title: str, text: str, links: str = "") -> bytes:
    return (f"<html><head><title>{title}</title></head><body>{NAV}<h1>{title}</h1>"
            f"<p>{text}</p>{links}</body></html>").encode()


def build(site: Site) -> None:
    site.pages.update({
        "/robots.txt": Page(b"User-agent: *\nDisallow: /guide/private/\n", "text/plain"),
        "/guide/": Page(html("Guide", "Welcome to the beverage guide.", """
            <a href="tea.html">tea</a> <a href="coffee.html#brewing">coffee</a>
            <a href="old.html">old</a> <a href="gone.html">gone</a>
            <a href="flaky.html">flaky</a> <a href="dropped.html">dropped</a>
            <a href="huge.html">huge</a> <a href="manual.pdf">manual</a>
            <a href="private/secret.html">secret</a> <a href="missing.html">missing</a>
            <a href="/outside.html">outside</a> <a href="photo.png">photo</a>
            <a href="index.html">self</a>
            <a href="http://localhost:PORT/guide/offsite.html">offsite</a>""")),
        "/guide/index.html": Page(html("Guide", "Welcome to the beverage guide.").replace(
            b"<head>", b'<head><link rel="canonical" href="/guide/">')),
        "/guide/tea.html": Page(TEA.encode(), etag=False,
                                last_modified="Tue, 01 Sep 2026 10:00:00 GMT"),
        "/guide/coffee.html": Page(html("Coffee", "Espresso is brewed under nine bars.")),
        "/guide/old.html": Page(status=301, location="/guide/moved.html"),
        "/guide/moved.html": Page(html("Moved", "Rooibos was moved to this page.")),
        "/guide/gone.html": Page(html("Gone", "Chicory coffee substitute notes.")),
        "/guide/flaky.html": Page(html("Flaky", "Matcha is whisked, not steeped.")),
        "/guide/dropped.html": Page(html("Dropped", "Yerba mate is drunk from a gourd.")),
        "/guide/huge.html": Page(html("Huge", "filler " * 3000), length=False),
        "/guide/manual.pdf": Page(make_pdf(["Kettle descaling uses citric acid."]),
                                  "application/pdf"),
        "/guide/loop/a.html": Page(html("Loop A", "Oolong loops one.",
                                        '<a href="b.html">b</a> <a href="./a.html">a</a>')),
        "/guide/loop/b.html": Page(html("Loop B", "Oolong loops two.",
                                        '<a href="a.html">a</a> <a href="../loop/">up</a>')),
        "/guide/loop/": Page(html("Loop", "Oolong index.", '<a href="a.html">a</a>')),
        "/guide/private/secret.html": Page(html("Secret", "Private blend.")),
        "/outside.html": Page(html("Outside", "Not part of the guide.")),
        "/guide/offsite.html": Page(html("Offsite", "Reached through another host.")),
        "/guide/sitemap.xml": Page(
            b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            b"<url><loc>PAGE/guide/orphan.html</loc></url>"
            b"<url><loc>PAGE/guide/tea.html</loc></url></urlset>", "application/xml"),
        "/guide/orphan.html": Page(html("Orphan", "Barley tea is only in the sitemap.")),
    })
    port = site.url.rsplit(":", 1)[1]
    for path, page in site.pages.items():
        page.body = page.body.replace(b"PORT", port.encode()).replace(b"PAGE", site.url.encode())
        site.pages[path] = page


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with serve(Site()) as running:
        build(running)
        yield running


def new_index(path: Path, url: str, **options: object) -> None:
    path.mkdir()
    (path / "config.toml").write_text("[index]\nbackend = \"local\"\nmax_bytes = 12000\n")
    configfile.remember_source(path, configfile.SourceConfig(url, options=dict(options)))


def texts(index_dir: Path) -> str:
    return "\n".join(str(row[1]) for row in store_rows(index_dir).values())


def uris(index: Index, query: str) -> set[str]:
    return {p.uri for hit in index.search(query, k=20) for p in hit.places}


def test_a_site_is_crawled_and_resynced_with_conditional_requests(
        site: Site, tmp_path: Path) -> None:
    start = f"{site.url}/guide/"
    index_dir = tmp_path / "idx"
    new_index(index_dir, start)
    with Index(index_dir) as index:
        check_crawl(index, index_dir, site)
        check_resync(index, site)
        check_unreachable(index, site, start, tmp_path / "notes")


def check_crawl(index: Index, index_dir: Path, site: Site) -> None:
    """First sync: the pages in the crawl are indexed, without their navigation."""
    site.log.clear()
    first = index.sync()
    hits = index.search("green tea steeped at eighty degrees", k=1)
    pages = {f"{site.url}/guide/{name}" for name in (
        "", "tea.html", "coffee.html", "moved.html", "gone.html", "flaky.html", "dropped.html",
        "manual.pdf", "loop/a.html", "loop/b.html", "loop/")}
    assert first.exit_code == 0, first
    assert first.new == len(pages)
    assert {s.uri for s in first.skips} == {f"{site.url}/guide/huge.html"}
    assert "too large" in first.skips[0].reason
    assert site.requests("/guide/private/secret.html") == []  # robots.txt
    assert site.requests("/outside.html") == [] and site.requests("/guide/photo.png") == []
    assert all(host.startswith("127.0.0.1") for host in site.hosts())  # the off-site link
    assert site.requests("/guide/index.html") == [200]  # its canonical URL is /guide/
    assert len(site.requests("/guide/loop/a.html")) == 1
    stored = texts(index_dir)
    assert "Kettle descaling" in stored and "Oolong loops two" in stored
    for noise in ("Next:", "Sitewide menu", "[Index]"):
        assert noise not in stored
    place = hits[0].place
    assert place.uri == f"{site.url}/guide/tea.html"
    assert (place.line_start, place.line_end) == TEA_LINES


def check_resync(index: Index, site: Site) -> None:
    """Second sync: one 304 per unchanged page; changed, vanished and failing pages."""
    site.log.clear()
    site.pages["/guide/coffee.html"] = Page(html("Coffee", "Cold brew steeps overnight."))
    site.pages["/guide/gone.html"] = Page(status=404)
    site.pages["/guide/flaky.html"] = Page(status=500)
    index_page = site.pages["/guide/"]
    index_page.body = index_page.body.replace(b'<a href="dropped.html">dropped</a>', b"")
    second = index.sync()
    cold = uris(index, "cold brew steeps overnight")
    gone = uris(index, "chicory coffee substitute") | uris(index, "yerba mate gourd")
    matcha = uris(index, "matcha is whisked")
    assert second.exit_code == 0, second
    assert (second.changed, second.deleted, second.new) == (2, 2, 0)  # coffee and the index
    unchanged = ["/guide/tea.html", "/guide/moved.html", "/guide/manual.pdf",
                 "/guide/loop/a.html", "/guide/loop/b.html", "/guide/loop/"]
    for path in unchanged:
        assert site.requests(path) == [304], path
    assert site.requests("/guide/old.html") == [301]
    assert site.requests("/guide/huge.html") == [304]  # still too large, not downloaded
    assert any(s.uri.endswith("huge.html") and "too large" in s.reason for s in second.skips)
    assert site.requests("/guide/dropped.html") == []
    assert f"{site.url}/guide/coffee.html" in cold
    assert f"{site.url}/guide/gone.html" not in gone
    assert f"{site.url}/guide/dropped.html" not in gone
    assert f"{site.url}/guide/flaky.html" in matcha  # the 500 kept its indexed version
    assert any(s.uri.endswith("flaky.html") and "500" in s.reason for s in second.skips)


def check_unreachable(index: Index, site: Site, start: str, folder: Path) -> None:
    """A site that is down deletes nothing, and a folder beside it still syncs."""
    folder.mkdir()
    (folder / "kettle.md").write_text("# Kettle\n\nBoil fresh water.\n")
    site.down = True
    try:
        third = index.sync([folder, start])
        kept = uris(index, "cold brew steeps overnight")
        notes = uris(index, "boil fresh water")
    finally:
        site.down = False
    assert third.exit_code == 1 and third.deleted == 0 and third.new == 1
    assert len(third.unreachable) == 1 and start in third.unreachable[0]
    assert f"{site.url}/guide/coffee.html" in kept
    assert any(uri.endswith("kettle.md") for uri in notes)


def scan(url: str, tmp_path: Path, writes: bool = True,
         **options: object) -> list[SourceItem | Skip]:
    return list(web_source(url, tmp_path, writes, **options).scan())


def web_source(url: str, tmp_path: Path, writes: bool = True, **options: object) -> Connector:
    config = configfile.Config(max_bytes=12000)
    source = configfile.SourceConfig(url, options=dict(options))
    return connector_for(source, ConnectorContext(config, (), tmp_path / "state", writes))


def test_a_run_that_may_not_write_keeps_no_crawl_state(site: Site, tmp_path: Path) -> None:
    source = web_source(f"{site.url}/guide/loop/", tmp_path, writes=False)
    items = [i for i in source.scan() if isinstance(i, SourceItem)]
    assert {i.uri.rsplit("/guide/", 1)[1] for i in items} == {"loop/", "loop/a.html",
                                                              "loop/b.html"}
    documents = [source.load(i) for i in items]
    assert all(isinstance(d, Document) and d.title.startswith("Loop") for d in documents)
    assert not (tmp_path / "state").exists()


def test_a_sitemap_start_crawls_the_pages_it_lists(site: Site, tmp_path: Path) -> None:
    found = scan(f"{site.url}/guide/sitemap.xml", tmp_path, max_pages=4)
    assert [i.uri for i in found if isinstance(i, SourceItem)][:2] == [
        f"{site.url}/guide/orphan.html", f"{site.url}/guide/tea.html"]
    assert len(found) == 3  # max_pages counts every fetch, the sitemap's too


def test_allow_and_deny_prefixes_bound_the_crawl(site: Site, tmp_path: Path) -> None:
    found = scan(f"{site.url}/guide/", tmp_path, deny=["/guide/loop/"],
                 allow=["/guide/", "/outside.html"], concurrency=2, delay=0.001)
    got = {i.uri for i in found}
    assert f"{site.url}/outside.html" in got
    assert not any("/loop/" in uri for uri in got)
    assert f"{site.url}/guide/tea.html" in got


def test_an_unreachable_start_url_fails_the_source(tmp_path: Path) -> None:
    with serve(Site()) as closed:
        url = closed.url
    with pytest.raises(SourceError, match="cannot"):
        scan(f"{url}/guide/", tmp_path)


def test_unknown_and_bad_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="max_page"):
        scan("https://docs.example.com/", tmp_path, max_page=3)
    with pytest.raises(ConfigError, match="concurrency"):
        scan("https://docs.example.com/", tmp_path, concurrency=0)


def test_refused_pages_are_withdrawn_and_redirects_out_of_scope_dropped(tmp_path: Path) -> None:
    with serve(Site()) as small:
        small.pages.update({
            "/d/": Page(html("Docs", "Start.", '<a href="ok.html">ok</a> <a href="locked.html">'
                             'locked</a> <a href="away.html">away</a>')),
            "/d/ok.html": Page(html("Ok", "Fine page.")),
            "/d/locked.html": Page(status=403),
            "/d/away.html": Page(status=302, location="/elsewhere/x.html"),
            "/elsewhere/x.html": Page(html("Elsewhere", "Out of scope.")),
        })
        found = scan(f"{small.url}/d/", tmp_path)
        assert small.requests("/elsewhere/x.html") == []
    skips = {i.uri: i for i in found if isinstance(i, Skip)}
    assert skips[f"{small.url}/d/locked.html"].withdraw
    assert "403" in skips[f"{small.url}/d/locked.html"].reason
    assert {i.uri for i in found if isinstance(i, SourceItem)} == {
        f"{small.url}/d/", f"{small.url}/d/ok.html"}
