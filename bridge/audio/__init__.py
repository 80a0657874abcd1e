"""Pure audio code: formats, codecs, typed chunks and the per-call resampler.

Nothing here does I/O or imports asyncio.
"""

from bridge.audio.chunk import AudioChunk, AudioFormat, Encoding
from bridge.audio.resampler import TARGET_RATE, CallAudio

__all__ = ["TARGET_RATE", "AudioChunk", "AudioFormat", "CallAudio", "Encoding"]
