"""What a crawl reads in a fetched body to go on: the links of an HTML page, its
canonical URL and robots directives, the URLs of a sitemap, and ``robots.txt`` rules.

Links are read with the standard library's tokenizer, which is several times faster
than building a tree; the page's text is extracted later, and only when it changed.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.robotparser import RobotFileParser

from indexer.connectors.web.address import normalise

AGENT = "batch-indexer"
"""The product token ``robots.txt`` rules are matched against."""

_SITEMAP = re.compile(rb"<(?:\w+:)?(urlset|sitemapindex)[\s>]")
_SITEMAP_SNIFF = 2048


@dataclass(frozen=True)
class PageLinks:
    """What an HTML page says about where to go next and what it is."""

    links: tuple[str, ...]
    canonical: str | None = None
    noindex: bool = False


class _LinkReader(HTMLParser):
    def __init__(self, url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.base = url
        self.links: list[str] = []
        self.canonical: str | None = None
        self.nofollow = False
        self.noindex = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {name: value or "" for name, value in attrs}
        rel = attr.get("rel", "").lower().split()
        if tag == "base" and attr.get("href"):
            self.base = normalise(attr["href"], self.base) or self.base
        elif tag in ("a", "area") and attr.get("href") and "nofollow" not in rel:
            self.links.append(attr["href"])
        elif tag in ("frame", "iframe") and attr.get("src"):
            self.links.append(attr["src"])
        elif tag == "link" and "canonical" in rel and attr.get("href"):
            self.canonical = self.canonical or attr["href"]
        elif tag == "meta" and attr.get("name", "").lower() in ("robots", AGENT):
            directives = {d.strip() for d in attr.get("content", "").lower().split(",")}
            self.nofollow |= bool(directives & {"nofollow", "none"})
            self.noindex |= bool(directives & {"noindex", "none"})


def page_links(url: str, body: bytes) -> PageLinks:
    """The links (absolute, normalised, in page order, once each) and the canonical URL
    of the HTML page ``body`` fetched from ``url``."""
    reader = _LinkReader(url)
    try:
        reader.feed(body.decode("utf-8", "replace"))
        reader.close()
    except AssertionError:  # the tokenizer gives up on some broken markup: keep what it read
        pass
    links = () if reader.nofollow else tuple(dict.fromkeys(
        link for link in (normalise(href, reader.base) for href in reader.links) if link))
    canonical = normalise(reader.canonical, reader.base) if reader.canonical else None
    return PageLinks(links, canonical, reader.noindex)


def is_sitemap(body: bytes) -> bool:
    """True when ``body`` is an XML sitemap or sitemap index."""
    return _SITEMAP.search(body[:_SITEMAP_SNIFF]) is not None


def sitemap_links(url: str, body: bytes) -> tuple[str, ...]:
    """The page (or nested sitemap) URLs a sitemap lists; unreadable XML lists none."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return ()
    found = (normalise(element.text or "", url) for element in root.iter()
             if element.tag.rsplit("}", 1)[-1] == "loc")
    return tuple(dict.fromkeys(link for link in found if link))


def robots_rules(text: str | None) -> RobotFileParser:
    """The rules of a ``robots.txt`` (``None``: there is none, everything is allowed)."""
    rules = RobotFileParser()
    rules.parse([] if text is None else text.splitlines())
    return rules
