"""G.711 and linear PCM decoding to float32, and encoding for channel simulation.

Decoding uses 256-entry tables built once from ``audioop`` (the standard module
below Python 3.13, ``audioop-lts`` from 3.13), so the per-frame cost is one
numpy gather.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import numpy.typing as npt

from bridge.audio.chunk import Encoding

with warnings.catch_warnings():
    # audioop is deprecated in 3.11-3.12 (PEP 594) and gone in 3.13, where the
    # audioop-lts distribution provides the same module name.
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

Float32Array = npt.NDArray[np.float32]
Int16Array = npt.NDArray[np.int16]

_ALL_BYTES = bytes(range(256))
_ULAW_TABLE: Int16Array = np.frombuffer(audioop.ulaw2lin(_ALL_BYTES, 2), dtype="<i2").copy()
_ALAW_TABLE: Int16Array = np.frombuffer(audioop.alaw2lin(_ALL_BYTES, 2), dtype="<i2").copy()
_SCALE = np.float32(1.0 / 32768.0)


def decode_to_int16(encoding: Encoding, data: bytes) -> Int16Array:
    """Decode whole samples of ``data`` to int16; the caller trims partial samples."""
    if encoding is Encoding.SLIN:
        return np.frombuffer(data, dtype="<i2").astype(np.int16, copy=False)
    table = _ULAW_TABLE if encoding is Encoding.ULAW else _ALAW_TABLE
    return table[np.frombuffer(data, dtype=np.uint8)]


def int16_to_float(samples: Int16Array) -> Float32Array:
    return samples.astype(np.float32) * _SCALE


def float_to_int16(samples: npt.NDArray[np.floating]) -> Int16Array:
    """Clip to [-1, 1) and quantise; used to build test and training audio."""
    return np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int16)


def encode_from_int16(encoding: Encoding, samples: Int16Array) -> bytes:
    """Encode int16 samples as ``encoding`` (little-endian for slin)."""
    raw = samples.astype("<i2").tobytes()
    if encoding is Encoding.SLIN:
        return raw
    if encoding is Encoding.ULAW:
        return bytes(audioop.lin2ulaw(raw, 2))
    return bytes(audioop.lin2alaw(raw, 2))


__all__ = [
    "Float32Array",
    "Int16Array",
    "decode_to_int16",
    "encode_from_int16",
    "float_to_int16",
    "int16_to_float",
]

if sys.byteorder != "little":  # pragma: no cover - documented limitation
    warnings.warn("amd-bridge is only tested on little-endian hosts", stacklevel=1)
