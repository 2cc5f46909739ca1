"""HTTP bodies as ClickHouse reads and writes them: chunked transfer, and Content-Encoding both ways."""

from __future__ import annotations

import gzip
import zlib
from typing import BinaryIO

import lz4.frame
from backports import zstd

ENCODINGS = ("lz4", "zstd", "gzip", "deflate")
"""What we can answer with, in our order of preference (cheapest first)."""


class BodyError(ValueError):
    """The request body is malformed or uses an encoding we do not speak."""


def read_body(rfile: BinaryIO, content_length: str | None, transfer_encoding: str | None) -> bytes:
    """The raw request body: de-chunked for `Transfer-Encoding: chunked`, else `Content-Length` bytes."""
    if transfer_encoding and transfer_encoding.lower() == "chunked":
        return _read_chunked(rfile)
    length = int(content_length or 0)
    data = rfile.read(length)
    if len(data) != length:
        raise BodyError(f"body ended after {len(data)} of {length} bytes")
    return data


def _read_chunked(rfile: BinaryIO) -> bytes:
    parts = []
    while True:
        line = rfile.readline(1024)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise BodyError(f"bad chunk size line {line[:40]!r}") from exc
        if size == 0:
            while rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass  # trailers, which we ignore
            return b"".join(parts)
        chunk = rfile.read(size)
        if len(chunk) != size or rfile.readline(3) not in (b"\r\n", b"\n"):
            raise BodyError("chunked body ended early or a chunk lacked its CRLF")
        parts.append(chunk)


def decode(data: bytes, content_encoding: str | None) -> bytes:
    """The body with `Content-Encoding` undone; lz4 bodies may be several concatenated frames."""
    encoding = (content_encoding or "identity").strip().lower()
    try:
        if encoding in ("", "identity"):
            return data
        if encoding == "lz4":
            return _lz4_frames(data)
        if encoding == "zstd":
            return zstd.decompress(data)
        if encoding == "gzip":
            return gzip.decompress(data)
        if encoding == "deflate":
            return zlib.decompress(data)
    except (RuntimeError, OSError, zlib.error, zstd.ZstdError) as exc:
        raise BodyError(f"cannot decode {encoding} body: {exc}") from exc
    raise BodyError(f"unsupported Content-Encoding {encoding!r}")


def _lz4_frames(data: bytes) -> bytes:
    out = []
    while data:
        decompressor = lz4.frame.LZ4FrameDecompressor()
        out.append(decompressor.decompress(data))
        if not decompressor.eof:
            raise BodyError("lz4 body ends inside a frame")
        data = decompressor.unused_data
    return b"".join(out)


def pick_encoding(accept_encoding: str | None) -> str | None:
    """The response encoding to use for an `Accept-Encoding` header, or None for identity."""
    offered = {part.split(";", 1)[0].strip().lower() for part in (accept_encoding or "").split(",")}
    return next((encoding for encoding in ENCODINGS if encoding in offered), None)


def encode(data: bytes, encoding: str | None) -> bytes:
    """`data` compressed with `encoding` (from `pick_encoding`)."""
    if encoding is None:
        return data
    if encoding == "lz4":
        return lz4.frame.compress(data)
    if encoding == "zstd":
        return zstd.compress(data)
    if encoding == "gzip":
        return gzip.compress(data, compresslevel=1)
    return zlib.compress(data, 1)
