"""Re-syncing a web site: requests, wall and CPU time for 1,000 pages (default).

A site of N pages (plus 21 index pages) is served on 127.0.0.1 by a server in another
process, so the CPU time measured is the crawler's. After a first sync, it times a
no-op re-sync (each page should cost one 304 and no parse), then a re-sync after 1% of
the pages changed. Page texts come from a small pool, so the first sync embeds little.

    python benchmarks/connector_web.py [N]
"""

from __future__ import annotations

import json
import multiprocessing
import resource
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from indexer import Index
from indexer import config as configfile
from website import Page, Site, serve

POOL = 40
SECTIONS = 20


def page(title: str, text: str, links: str = "") -> bytes:
    return (f"<html><head><title>{title}</title></head><body><nav><a href='/docs/'>Home</a>"
            f"</nav><h1>{title}</h1><p>{text}</p>{links}</body></html>").encode()


def site(n: int) -> Site:
    built = Site()
    built.pages["/robots.txt"] = Page(b"User-agent: *\nAllow: /\n", "text/plain")
    built.pages["/docs/"] = Page(page("Docs", "The manual.", "".join(
        f"<a href='s{s}/'>section {s}</a>" for s in range(SECTIONS))))
    for s in range(SECTIONS):
        members = range(s, n, SECTIONS)
        built.pages[f"/docs/s{s}/"] = Page(page(f"Section {s}", "A section.", "".join(
            f"<a href='p{i}.html'>page {i}</a>" for i in members)))
        for i in members:
            built.pages[f"/docs/s{s}/p{i}.html"] = Page(page(
                f"Page {i % POOL}", f"This page explains topic number {i % POOL}."))
    return built


def run_server(n: int, ready: multiprocessing.Queue[str]) -> None:
    with serve(site(n)) as running:
        ready.put(running.url)
        time.sleep(3600)


def post(url: str, body: bytes = b"") -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, body, method="POST")) as answer:
        return bytes(answer.read())


def timed(index: Index, url: str) -> tuple[float, float, Counter[int], object]:
    post(url + "/_log")
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    report = index.sync()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    seconds = after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime
    statuses = Counter(status for _, _, status in json.loads(post(url + "/_log")))
    return wall, seconds, statuses, report


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000
    ready: multiprocessing.Queue[str] = multiprocessing.Queue()
    server = multiprocessing.Process(target=run_server, args=(n, ready), daemon=True)
    server.start()
    url = ready.get(timeout=30)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            index_dir = Path(tmp) / "idx"
            index_dir.mkdir()
            (index_dir / "config.toml").write_text('[index]\nbackend = "local"\n')
            configfile.remember_source(index_dir, configfile.SourceConfig(
                url + "/docs/", options={"max_pages": n + 100, "concurrency": 4}))
            with Index(index_dir) as index:
                wall, cpu, statuses, first = timed(index, url)
                print(f"first sync of {n} pages: {wall:.2f}s wall, {cpu:.2f} CPU-s, "
                      f"requests {dict(statuses)} ({getattr(first, 'new', 0)} new)")
                wall, cpu, statuses, report = timed(index, url)
                print(f"no-op re-sync: {wall:.2f}s wall, {cpu:.2f} CPU-s, "
                      f"{sum(statuses.values())} requests {dict(statuses)}, "
                      f"{getattr(report, 'unchanged', 0)} unchanged")
                changed = range(0, n, 100)
                for i in changed:
                    post(f"{url}/_edit/docs/s{i % SECTIONS}/p{i}.html",
                         page(f"Page {i}", f"Topic {i} was rewritten for release two."))
                wall, cpu, statuses, report = timed(index, url)
                print(f"re-sync after {len(changed)} pages changed: {wall:.2f}s wall, "
                      f"{cpu:.2f} CPU-s, {sum(statuses.values())} requests "
                      f"{dict(statuses)}, {getattr(report, 'changed', 0)} changed")
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
