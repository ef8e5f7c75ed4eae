"""What a file that is not indexed is: named by its suffix (never read) or by its first
bytes, so a skip says "image (.png)" or "SQLite database" rather than "binary file"."""

from __future__ import annotations

import os

_KINDS: dict[str, frozenset[str]] = {
    "image": frozenset({
        ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".icns", ".webp", ".tif", ".tiff",
        ".psd", ".heic", ".avif", ".eps", ".raw", ".cr2", ".nef"}),
    "audio": frozenset({
        ".mp3", ".wav", ".flac", ".ogg", ".oga", ".m4a", ".aac", ".opus"}),
    "video": frozenset({
        ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".wmv", ".flv", ".mpg", ".mpeg"}),
    "archive": frozenset({
        ".zip", ".tar", ".gz", ".tgz", ".bz2", ".tbz2", ".xz", ".txz", ".zst", ".lz", ".lz4",
        ".lzma", ".7z", ".rar", ".cab", ".jar", ".war", ".ear", ".whl", ".egg", ".apk", ".deb",
        ".rpm", ".dmg", ".iso", ".img", ".msi", ".svgz"}),
    "compiled program or library": frozenset({
        ".exe", ".dll", ".so", ".dylib", ".o", ".obj", ".a", ".lib", ".ko", ".elf", ".bin",
        ".class", ".pyc", ".pyo", ".pyd", ".wasm"}),
    "font": frozenset({".ttf", ".otf", ".woff", ".woff2", ".eot"}),
    "office document": frozenset({
        ".doc", ".docx", ".xls", ".xlsx", ".ppt", ".pptx", ".odt", ".ods", ".odp", ".epub"}),
    "database": frozenset({".sqlite", ".sqlite3", ".db", ".mdb"}),
    "data file": frozenset({
        ".parquet", ".arrow", ".feather", ".avro", ".orc", ".lance", ".npy", ".npz", ".pkl",
        ".pickle", ".h5", ".hdf5"}),
    "model weights": frozenset({
        ".onnx", ".pt", ".pth", ".ckpt", ".safetensors", ".gguf", ".tflite", ".pb"}),
    "editor or system file": frozenset({".ds_store", ".swp", ".swo"}),
}
_BY_SUFFIX = {suffix: kind for kind, suffixes in _KINDS.items() for suffix in suffixes}

BINARY_SUFFIXES = frozenset(_BY_SUFFIX)
"""Suffixes of files skipped as binary without being read."""

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG", "PNG image"), (b"\xff\xd8\xff", "JPEG image"), (b"GIF8", "GIF image"),
    (b"PK\x03\x04", "ZIP archive (or an office document)"), (b"\x1f\x8b", "gzip archive"),
    (b"\x7fELF", "compiled program (ELF)"), (b"SQLite format 3\x00", "SQLite database"),
    (b"\x00asm", "WebAssembly module"), (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"\xd0\xcf\x11\xe0", "old Microsoft Office document"), (b"wOFF", "web font"),
)


def suffix_of(name: str) -> str:
    """A file name's lower-case suffix (a dotfile's whole name, ``.ds_store``)."""
    lower = name.lower()
    return os.path.splitext(lower)[1] or (lower if lower.startswith(".") else "")


def skipped_kind(name: str) -> str:
    """Why a file called ``name`` is not read: what it is, by its suffix."""
    suffix = suffix_of(name)
    kind = _BY_SUFFIX.get(suffix)
    if kind is None:
        return "binary file"
    if kind == "office document":
        return f"office document ({suffix}): its text cannot be extracted (not supported)"
    return f"{kind} ({suffix}): no text to index"


def sniffed_kind(data: bytes) -> str:
    """Why bytes that are not text are not indexed: what their first bytes say they are."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return f"binary file ({kind})"
    return "binary file"
