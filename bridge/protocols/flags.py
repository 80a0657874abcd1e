"""Yes/no options as the PBXs and clients spell them."""

from __future__ import annotations

from bridge.errors import ProtocolError

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def parse_flag(value: object, where: str) -> bool:
    """``true``/``false`` (JSON), or ``1 0 yes no on off true false`` in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.isascii():
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ProtocolError(f"{where}={str(value)[:20]!r}: expected yes or no (1/0, true/false)")
