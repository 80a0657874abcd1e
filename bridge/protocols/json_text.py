"""JSON text frames from the network, read with a size bound and one error type."""

from __future__ import annotations

import json
from typing import Any

from bridge.errors import ProtocolError


def load_bounded(text: str, max_bytes: int, what: str, not_json: str = "") -> Any:
    """``json.loads`` for a frame of at most ``max_bytes`` (UTF-8); anything too long
    or not JSON raises ``ProtocolError`` naming ``what`` it was (``not_json``, when
    given, is the start of the second message)."""
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise ProtocolError(f"{what} longer than {max_bytes} bytes")
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ProtocolError(f"{not_json or what + ' is not JSON'}: {exc}") from None
