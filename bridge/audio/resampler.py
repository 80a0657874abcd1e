"""Per-call conversion of PBX audio to the 16 kHz mono float32 the engine wants."""

from __future__ import annotations

import numpy as np
import soxr

from bridge.audio.chunk import AudioFormat
from bridge.audio.codecs import Float32Array, decode_to_int16, int16_to_float
from bridge.errors import UnsupportedAudioFormat

TARGET_RATE = 16000
_EMPTY: Float32Array = np.zeros(0, dtype=np.float32)


class CallAudio:
    """Decodes and resamples one call's audio, keeping state across chunks.

    One soxr stream per call keeps the filter state between frames, so chunk
    edges leave no clicks; a byte left over from an odd-length slin frame is
    kept for the next one. The format is fixed for the life of the call.
    soxr's HQ filter delays its output by about 60 ms; ``input_seconds`` counts
    what the PBX sent, which is the clock decisions are reported against.
    """

    def __init__(self, fmt: AudioFormat) -> None:
        self.format = fmt
        self._carry = b""
        self._input_samples = 0
        self._stream: soxr.ResampleStream | None = None
        self._flushed = False
        if fmt.rate != TARGET_RATE:
            self._stream = soxr.ResampleStream(
                fmt.rate, TARGET_RATE, 1, dtype="float32", quality="HQ"
            )

    @property
    def input_seconds(self) -> float:
        """Seconds of audio received so far, at the input rate."""
        return self._input_samples / self.format.rate

    def push(self, data: bytes, fmt: AudioFormat | None = None) -> Float32Array:
        """Add raw bytes; return whatever 16 kHz samples are ready."""
        return self.resample(self.decode(data, fmt))

    def silence(self, samples: int) -> Float32Array:
        """``samples`` of silence at the input rate, counted as received (a stream that
        sent nothing for a while, heard as the silence it stands for)."""
        self._input_samples += samples
        return np.zeros(samples, dtype=np.float32)

    def decode(self, data: bytes, fmt: AudioFormat | None = None) -> Float32Array:
        """Raw bytes to float samples at the input rate (an odd byte waits for the next)."""
        if fmt is not None and fmt != self.format:
            raise UnsupportedAudioFormat(
                f"format changed mid-call from {self.format} to {fmt}; one format per call"
            )
        if self._flushed:
            raise RuntimeError("CallAudio.push() after flush()")
        width = self.format.bytes_per_sample
        if self._carry:
            data = self._carry + data
            self._carry = b""
        usable = len(data) - len(data) % width
        if usable != len(data):
            self._carry = data[usable:]
            data = data[:usable]
        if not data:
            return _EMPTY
        samples = int16_to_float(decode_to_int16(self.format.encoding, data))
        self._input_samples += len(samples)
        return samples

    def resample(self, samples: Float32Array) -> Float32Array:
        """Samples from ``decode`` to 16 kHz (soxr hands them over in ~100 ms blocks)."""
        if self._stream is None or not len(samples):
            return samples
        out: Float32Array = self._stream.resample_chunk(samples)
        return out

    def flush(self) -> Float32Array:
        """End of stream: return the samples still inside the filter."""
        self._carry = b""
        if self._flushed or self._stream is None:
            self._flushed = True
            return _EMPTY
        self._flushed = True
        out: Float32Array = self._stream.resample_chunk(_EMPTY, last=True)
        return out
