"""amd-bridge: answering machine detection for Asterisk and FreeSWITCH.

Layers, from the wire inwards:

- ``bridge.audio``: pure audio code (codecs, typed chunks, the per-call resampler).
- ``bridge.session``: the call session, a plain object fed audio and a clock.
- ``bridge.engine``: ASR (Whisper on CTranslate2), VAD timing, the classifier,
  and the batcher that runs them off the event loop.
- ``bridge.cli``: the ``amd-bridge`` command.
"""

__version__ = "0.1.0"
