"""The extract and chunk steps: text out of a stored object, then segments of a profile's size.

Extraction supports plain text, Markdown, JSON (its string values, with their keys), HTML (text
only: no script/style) and PDF (pypdf). Anything else raises ``UnsupportedContentType`` and the
upload is marked failed with that reason. Chunking packs paragraphs, then sentences, then words,
into segments of at most ``chunk_size`` characters; each segment after the first starts with up to
``chunk_overlap`` characters of the one before, cut at a sentence or word boundary.
"""

from __future__ import annotations

import json
import mimetypes
import re
import tempfile
from html.parser import HTMLParser
from typing import IO, Any

from memory.storage import BLOCK


class UnsupportedContentType(Exception):
    pass


class ExtractionError(Exception):
    pass


TEXT_TYPES = {"text/plain", "text/markdown", "text/x-markdown", "text/csv"}
HTML_TYPES = {"text/html", "application/xhtml+xml"}
_EXTENSIONS = {".md": "text/markdown", ".markdown": "text/markdown", ".txt": "text/plain", ".json": "application/json"}


def effective_content_type(content_type: str, filename: str) -> str:
    """The declared type, or one guessed from the file name when none (or octet-stream) was sent."""
    declared = (content_type or "").split(";")[0].strip().lower()
    if declared and declared != "application/octet-stream":
        return declared
    lowered = (filename or "").lower()
    for extension, guessed in _EXTENSIONS.items():
        if lowered.endswith(extension):
            return guessed
    return (mimetypes.guess_type(lowered)[0] or declared or "application/octet-stream").lower()


def _read_all(source: IO[bytes]) -> bytes:
    blocks: list[bytes] = []
    while True:
        block = source.read(BLOCK)
        if not block:
            return b"".join(blocks)
        blocks.append(block)


class _TextOnly(HTMLParser):
    SKIP = {"script", "style", "noscript", "template", "head"}
    BLOCKS = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "section", "article", "pre"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)

    def text(self) -> str:
        joined = "".join(self.parts)
        paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", joined)]
        return "\n\n".join(p for p in paragraphs if p)


def _json_lines(value: Any, path: str = "") -> list[str]:
    if isinstance(value, dict):
        return [line for key, item in value.items() for line in _json_lines(item, f"{path}.{key}" if path else str(key))]
    if isinstance(value, list):
        return [line for item in value for line in _json_lines(item, path)]
    if value is None or isinstance(value, bool):
        return []
    text = str(value)
    return [f"{path}: {text}" if path else text]


def extract_text(source: IO[bytes], content_type: str, filename: str = "") -> str:
    kind = effective_content_type(content_type, filename)
    if kind in TEXT_TYPES:
        return _read_all(source).decode("utf-8", errors="replace")
    if kind == "application/json" or kind.endswith("+json"):
        try:
            document = json.loads(_read_all(source).decode("utf-8", errors="replace"))
        except ValueError as exc:
            raise ExtractionError(f"the JSON document is invalid: {exc}") from exc
        return "\n\n".join(_json_lines(document))
    if kind in HTML_TYPES:
        parser = _TextOnly()
        parser.feed(_read_all(source).decode("utf-8", errors="replace"))
        parser.close()
        return parser.text()
    if kind == "application/pdf":
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError

        # pypdf needs a seekable file; S3 bodies are streams, so spool (to disk past 8 MiB).
        with tempfile.SpooledTemporaryFile(max_size=8 * BLOCK) as spooled:
            while block := source.read(BLOCK):
                spooled.write(block)
            spooled.seek(0)
            try:
                reader = PdfReader(spooled)
                return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages).strip()
            except (PyPdfError, ValueError, KeyError, TypeError) as exc:
                raise ExtractionError(f"the PDF could not be read: {exc}") from exc
    raise UnsupportedContentType(f"content type {kind!r} is not supported (text, Markdown, JSON, HTML and PDF are)")


_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")


def _split_long(text: str, size: int) -> list[str]:
    """A paragraph over SIZE: by sentence, and a sentence over SIZE by words (or hard cuts)."""
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        sentence = sentence.strip()
        while len(sentence) > size:
            cut = sentence.rfind(" ", 0, size + 1)
            cut = cut if cut > size // 2 else size
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence:
            pieces.append(sentence)
    return pieces


def _overlap_tail(segment: str, overlap: int) -> str:
    if overlap <= 0 or not segment:
        return ""
    tail = segment[-overlap:]
    if len(tail) == len(segment):
        return tail
    # Start the overlap at a sentence start if there is one in it, else at a word start.
    match = _SENTENCE_END.search(tail)
    if match and match.end() < len(tail):
        return tail[match.end() :]
    space = tail.find(" ")
    return tail[space + 1 :] if 0 <= space < len(tail) - 1 else tail


def chunk_text(text: str, chunk_size: int, chunk_overlap: int) -> list[str]:
    units: list[tuple[str, bool]] = []  # (text, starts a paragraph)
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(paragraph.split())
        if not paragraph:
            continue
        pieces = [paragraph] if len(paragraph) <= chunk_size else _split_long(paragraph, chunk_size)
        units.extend((piece, i == 0) for i, piece in enumerate(pieces))
    segments: list[str] = []
    current = ""
    for unit, new_paragraph in units:
        joiner = "\n\n" if new_paragraph else " "
        candidate = f"{current}{joiner}{unit}" if current else unit
        if len(candidate) <= chunk_size:
            current = candidate
            continue
        segments.append(current)
        tail = _overlap_tail(current, chunk_overlap)
        current = f"{tail} {unit}" if tail and len(tail) + 1 + len(unit) <= chunk_size else unit
    if current:
        segments.append(current)
    return segments
