"""One peer's run, in a process of its own (the peers' virtualenv): ``run.py`` starts it.

    python peers.py PEER index WORK RESULT.json    # index WORK/corpus, state in WORK/state
    python peers.py PEER chunk WORK RESULT.json    # read and chunk WORK/corpus, CPU-s only

PEER is langchain, llamaindex, llm, chonkie or tiktoken (the last two chunk only).
``index`` on a WORK already indexed is the peer's own re-sync. Every peer reads the
same files the same way (:func:`read_corpus`: Markdown and reST as UTF-8, PDFs through
pypdf) except llm, which reads its ``--files`` itself (text files only). Chunks are cut
at 512 cl100k tokens with no overlap. The result file gets the call's wall and CPU
time (this process, all threads), the process's peak RSS (VmHWM) and what the fake
embedder was asked to embed.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_embedding import DIMS, ENCODING, TALLY, vector

BUDGET = 512
TEXT_SUFFIXES = (".md", ".rst")


def read_corpus(root: Path) -> list[tuple[str, str]]:
    """(path relative to ``root``, text) of every file, sorted."""
    from pypdf import PdfReader

    out = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.suffix in TEXT_SUFFIXES:
            text = path.read_text("utf-8", errors="replace")
        elif path.suffix == ".pdf":
            text = "\n\n".join(page.extract_text() or "" for page in PdfReader(path).pages)
        else:
            continue
        out.append((path.relative_to(root).as_posix(), text))
    return out


def _encoding() -> Any:
    import tiktoken

    return tiktoken.get_encoding(ENCODING)


# ---- LangChain: index() with a SQL record manager and a LanceDB vector store ----

def _langchain_splitter() -> Any:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter.from_tiktoken_encoder(
        encoding_name=ENCODING, chunk_size=BUDGET, chunk_overlap=0)


def langchain_index(work: Path) -> dict[str, Any]:
    import lancedb
    from langchain_classic.indexes import SQLRecordManager
    from langchain_community.vectorstores import LanceDB
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.indexing import index

    class Fake(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [vector(t) for t in texts]

        def embed_query(self, text: str) -> list[float]:
            return vector(text)

    state = work / "state"
    state.mkdir(exist_ok=True)
    docs = [Document(page_content=text, metadata={"source": rel})
            for rel, text in read_corpus(work / "corpus")]
    chunks = _langchain_splitter().split_documents(docs)
    store = LanceDB(connection=lancedb.connect(str(state / "lancedb")), embedding=Fake(),
                    table_name="docs", mode="append")
    records = SQLRecordManager("lancedb/docs", db_url=f"sqlite:///{state / 'records.sqlite'}")
    records.create_schema()
    cleanup = os.environ.get("PEERS_LANGCHAIN_CLEANUP", "full")
    result = index(chunks, records, store, cleanup=cleanup,  # type: ignore[arg-type]
                   source_id_key="source", key_encoder="sha256")
    return {"peer_says": dict(result)}


def langchain_chunk(texts: list[tuple[str, str]]) -> int:
    from langchain_core.documents import Document

    docs = [Document(page_content=text, metadata={"source": rel}) for rel, text in texts]
    return len(_langchain_splitter().split_documents(docs))


# ---- LlamaIndex: IngestionPipeline, a docstore (upserts) and a LanceDB vector store ----

def _llama_splitter() -> Any:
    from llama_index.core.node_parser import SentenceSplitter

    return SentenceSplitter(chunk_size=BUDGET, chunk_overlap=0,
                            tokenizer=_encoding().encode_ordinary)


def _llama_documents(texts: list[tuple[str, str]]) -> list[Any]:
    from llama_index.core import Document

    return [Document(text=text, id_=rel, metadata={"source": rel}) for rel, text in texts]


def llamaindex_index(work: Path) -> dict[str, Any]:
    from llama_index.core.embeddings import BaseEmbedding
    from llama_index.core.ingestion import DocstoreStrategy, IngestionPipeline
    from llama_index.core.storage.docstore import SimpleDocumentStore
    from llama_index.vector_stores.lancedb import LanceDBVectorStore

    class Fake(BaseEmbedding):
        def _get_text_embedding(self, text: str) -> list[float]:
            return vector(text)

        def _get_query_embedding(self, query: str) -> list[float]:
            return vector(query)

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return vector(query)

    class LanceStore(LanceDBVectorStore):
        """The plugin's ``delete`` double-quotes the id, which LanceDB reads as a column
        name (0.6.0: every re-sync of a changed document fails); single quotes fixed."""

        def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
            quoted = ref_doc_id.replace("'", "''")
            self.table.delete(f"{self.doc_id_key} = '{quoted}'")

    state = work / "state"
    pipeline = IngestionPipeline(
        transformations=[_llama_splitter(), Fake(embed_batch_size=100)],
        docstore=SimpleDocumentStore(),
        vector_store=LanceStore(uri=str(state / "lancedb"), table_name="docs"),
        docstore_strategy=DocstoreStrategy.UPSERTS)
    if (state / "pipeline").exists():
        pipeline.load(str(state / "pipeline"))
    nodes = pipeline.run(documents=_llama_documents(read_corpus(work / "corpus")))
    pipeline.persist(str(state / "pipeline"))
    return {"peer_says": {"nodes": len(nodes)}}


def llamaindex_chunk(texts: list[tuple[str, str]]) -> int:
    return len(_llama_splitter().get_nodes_from_documents(_llama_documents(texts)))


# ---- simonw llm: embed-multi over the files, one vector a file (no chunking) ----

def _llm_environment(work: Path) -> None:
    """Set before llm is imported: its user folder, and no installed plugins (ours is
    registered by :func:`llm_index`)."""
    (work / "state").mkdir(exist_ok=True)
    os.environ["LLM_USER_PATH"] = str(work / "state" / "llm-user")
    os.environ["LLM_LOAD_PLUGINS"] = ""


def llm_index(work: Path) -> dict[str, Any]:
    state = work / "state"
    import llm.plugins
    import llm_fake_embed
    from llm.cli import cli

    llm.plugins.pm.register(llm_fake_embed, "peers-fake")
    corpus = str(work / "corpus")
    argv = ["embed-multi", "docs", "-d", str(state / "embeddings.db"), "-m", "peers-fake-1536"]
    for suffix in TEXT_SUFFIXES:
        argv += ["--files", corpus, f"**/*{suffix}"]
    cli.main(argv, standalone_mode=False)
    return {}


# ---- chunkers only ----

def chonkie_chunk(texts: list[tuple[str, str]]) -> int:
    from chonkie import RecursiveChunker

    chunker = RecursiveChunker(tokenizer=_encoding(), chunk_size=BUDGET)
    return sum(len(chunker.chunk(text)) for _, text in texts)


def tiktoken_chunk(texts: list[tuple[str, str]]) -> int:
    """Not chunking: one bare ``encode_ordinary`` of each file; returns the token count."""
    enc = _encoding()
    return sum(len(enc.encode_ordinary(text)) for _, text in texts)


# imported before the clock starts: the call's time is the work, the process's includes them
IMPORTS = {
    "langchain": ["lancedb", "langchain_classic.indexes", "langchain_community.vectorstores",
                  "langchain_core.indexing", "langchain_text_splitters"],
    "llamaindex": ["llama_index.core", "llama_index.core.ingestion",
                   "llama_index.vector_stores.lancedb", "llama_index.core.node_parser"],
    "llm": ["llm.cli", "llm_fake_embed"], "chonkie": ["chonkie"], "tiktoken": [],
}
INDEX: dict[str, Callable[[Path], dict[str, Any]]] = {
    "langchain": langchain_index, "llamaindex": llamaindex_index, "llm": llm_index}
CHUNK: dict[str, Callable[[list[tuple[str, str]]], int]] = {
    "langchain": langchain_chunk, "llamaindex": llamaindex_chunk, "chonkie": chonkie_chunk,
    "tiktoken": tiktoken_chunk}


def vmhwm_mb() -> float:
    """This process's peak resident memory, in MB."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def main() -> None:
    peer, mode, work, result = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
    out: dict[str, Any] = {"dims": DIMS}
    if peer == "llm":
        _llm_environment(work)
    for module in IMPORTS[peer]:
        importlib.import_module(module)
    if mode == "chunk":
        _encoding()  # loading the BPE file is a one-off, not chunking
        passes = []
        for _ in range(int(os.environ.get("PEERS_CHUNK_PASSES", "2"))):
            started = time.process_time()
            texts = read_corpus(work / "corpus")
            middle = time.process_time()
            chunks = CHUNK[peer](texts)
            passes.append((middle - started, time.process_time() - middle))
        read, cut = min(passes, key=sum)
        out.update(cpu=read + cut, read_cpu=read, chunk_cpu=cut, chunks=chunks)
    else:
        started, cpu = time.perf_counter(), time.process_time()
        out.update(INDEX[peer](work))
        out.update(wall=time.perf_counter() - started, cpu=time.process_time() - cpu)
        out.update(TALLY)
    out["vmhwm_mb"] = vmhwm_mb()
    result.write_text(json.dumps(out))


if __name__ == "__main__":
    main()
