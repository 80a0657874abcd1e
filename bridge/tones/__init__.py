"""Call-progress tones in a call's audio: voicemail beeps, fax and special information tones.

Pure code, no I/O: ``spectrum`` turns 16 kHz audio into per-frame tonality
figures, ``tracker`` groups tonal frames into tones and names them.
"""

from bridge.tones.tracker import ToneEvent, ToneKind, ToneTracker

__all__ = ["ToneEvent", "ToneKind", "ToneTracker"]
