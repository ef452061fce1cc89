"""The heatmap window's MQTT wire format: compact JSON (docs/heatmap.md), deflated with zlib.

Measured on 60 s windows (docs/heatmap.md): spread cells make plain JSON 1.5-2.6 KB, zlib'd JSON
0.6-0.9 KB, a packed binary about the same as zlib'd JSON but opaque; zlib'd JSON keeps the
documented JSON schema and is readable anywhere (`zlib.decompress`, browsers'
DecompressionStream("deflate")). The decoder also accepts plain JSON (anything not starting 0x78).
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from edge_agent.errors import InputError
from edge_agent.heatmap.window import Window

CONTENT_TYPE = "application/json+deflate"
"""MQTT 5 content-type property for publishers that set one."""
ZLIB_LEVEL = 9
"""One window a minute per agent: the best compression costs nothing that matters."""
ZLIB_HEADER = b"\x78"
"""First byte of every zlib stream with the 32 KiB window zlib.compress uses; JSON never has it."""
MAX_PAYLOAD_BYTES = 1 << 20
"""A window inflating beyond 1 MiB is garbage or a zip bomb, not a heatmap (typical: < 10 KB)."""


def payload_json(window: Window) -> bytes:
    """The window as compact UTF-8 JSON (no spaces)."""
    return json.dumps(window.to_payload(), separators=(",", ":"), ensure_ascii=False).encode()


def encode_window(window: Window) -> bytes:
    """The bytes published on plants/{site}/agents/{agent}/heatmap: zlib-deflated compact JSON."""
    return zlib.compress(payload_json(window), ZLIB_LEVEL)


def decode_window(data: bytes, source: str = "heatmap payload") -> Window:
    """Bytes from the broker back to a Window; anything malformed is an InputError, one line."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InputError(source, "payload must be bytes", value=type(data).__name__)
    raw = bytes(data)
    if raw[:1] == ZLIB_HEADER:
        try:
            d = zlib.decompressobj()
            raw = d.decompress(raw, MAX_PAYLOAD_BYTES)
            if d.unconsumed_tail:
                raise InputError(source, f"inflates beyond {MAX_PAYLOAD_BYTES} bytes")
            if not d.eof:
                raise InputError(source, "truncated deflate stream", value=len(data))
        except zlib.error as e:
            raise InputError(source, f"neither JSON nor deflated JSON: {e}") from None
    try:
        doc: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(source, f"not valid JSON: {e}") from None
    return Window.from_payload(doc, source)
