"""Per-frame tonality of a call's audio at its own rate: the strongest frequency,
how much of the telephone band's energy sits on it, and how loud it is.

Frames are 64 ms Hann windows every 10 ms, at the rate the PBX sends (the
16 kHz resampler hands its output over in 100 ms blocks, too late for a beep's
end). 64 ms resolves tones 40 Hz apart (US ringback is 440 + 480 Hz), which a
shorter window would blur into one beating peak; a tone's end is still seen
about 40 ms after it stops, because a window less than about a third full of
the tone falls 6 dB below it. Frames are computed in batches (see
``BATCH_FRAMES``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bridge.audio.codecs import Float32Array

WINDOW_S = 0.064
HOP_S = 0.010
BIN_HZ = 1 / WINDOW_S  # 15.6 Hz at every rate
# Frames are computed this many at a time (numpy's per-call cost dominates one
# frame's work): 4 (40 ms) keeps a beep's end within 100 ms; 25 (250 ms) is for
# when nothing waits on a beep (a fax or SIT decision 200 ms later changes nothing,
# and the batches were the largest part of the media path's cost).
BATCH_FRAMES = 4
RELAXED_BATCH_FRAMES = 25
BAND_HZ = (250.0, 3600.0)  # the telephone band the purity is measured against
PEAK_HZ = (300.0, 2300.0)  # where tones of interest live (beeps, fax CNG/CED, SIT)
LOBE_BINS = 2  # a Hann window keeps a pure tone within +-2 bins of its peak
# A voice's strong harmonic has neighbours at these multiples of it (the fundamental
# under its 2nd harmonic, the 3rd and 4th); a generator's tone has none.
HARMONICS = (0.5, 1.5, 2.0)
# A frame can be part of a tone when this share of the band's energy is on its
# peak and the peak is this loud (dB against a full-scale sine): a pure tone
# measures >0.95 at 10 dB SNR, two equal tones about 0.6. Only such frames get
# their frequency interpolated and their harmonics measured.
TONAL_PURITY = 0.8
TONAL_MIN_DB = -45.0

_FLOOR = 1e-12
_MULTIPLES = np.array(HARMONICS)[:, None]
_OFFSETS = np.arange(-LOBE_BINS, LOBE_BINS + 1)
_NEIGHBOURS = np.array((-1, 0, 1))


@dataclass(frozen=True)
class Frames:
    """Figures for consecutive frames; frame ``i`` covers 64 ms centred on ``center_s[i]``."""

    center_s: npt.NDArray[np.float64]
    peak_hz: npt.NDArray[np.float64]  # strongest frequency in PEAK_HZ, interpolated
    purity: npt.NDArray[np.float64]  # share of the band's energy within +-2 bins of the peak
    tone_db: npt.NDArray[np.float64]  # energy around the peak, dB relative to a full-scale sine
    band_db: npt.NDArray[np.float64]  # energy in the whole band, same reference
    harmonic_db: npt.NDArray[np.float64]  # strongest of f/2, 3f/2, 2f against the peak, dB

    def __len__(self) -> int:
        return len(self.center_s)


class FrameAnalyzer:
    """Keeps the tail of the stream between calls; ``feed`` returns the frames now complete."""

    def __init__(self, rate: int, batch_frames: int = BATCH_FRAMES) -> None:
        self.rate = rate
        self.batch_frames = batch_frames
        self.window = round(WINDOW_S * rate)
        self.hop = round(HOP_S * rate)
        self._hann = np.hanning(self.window).astype(np.float32)
        # Main-lobe energy of a full-scale sine: levels are dB relative to it.
        self._full_scale = float(3 * self.window**2 / 32)
        nyquist_bin = self.window // 2 - LOBE_BINS - 1
        self._band = (_bin(BAND_HZ[0]), min(_bin(BAND_HZ[1]) + 1, nyquist_bin))
        self._peak = (_bin(PEAK_HZ[0]), min(_bin(PEAK_HZ[1]) + 1, nyquist_bin))
        self._buffer = np.zeros(0, dtype=np.float32)
        self._next_frame = 0  # global index of the next frame to compute
        self._buffer_start = 0  # global sample index of _buffer[0]
        self._fed = 0
        self.fed_s = 0.0  # audio received so far

    def feed(self, samples: Float32Array) -> Frames:
        self._buffer = np.concatenate((self._buffer, samples))
        self._fed += len(samples)
        self.fed_s = self._fed / self.rate
        return self._frames(minimum=self.batch_frames)

    def flush(self) -> Frames:
        """End of stream: the frames complete but held back for a full batch."""
        return self._frames(minimum=1)

    def _frames(self, minimum: int) -> Frames:
        first_sample = self._next_frame * self.hop - self._buffer_start
        available = len(self._buffer) - first_sample - self.window
        count = available // self.hop + 1 if available >= 0 else 0
        if count < minimum:
            return _EMPTY
        span = self._buffer[first_sample : first_sample + (count - 1) * self.hop + self.window]
        step = span.strides[0]
        windows = np.lib.stride_tricks.as_strided(
            span, (count, self.window), (self.hop * step, step), writeable=False
        )
        frames = self._analyze(windows)
        self._next_frame += count
        keep_from = self._next_frame * self.hop - self._buffer_start
        self._buffer = self._buffer[keep_from:]
        self._buffer_start += keep_from
        return frames

    def _analyze(self, windows: npt.NDArray[np.float32]) -> Frames:
        spectrum = np.fft.rfft(windows * self._hann, axis=1)
        power = spectrum.real**2 + spectrum.imag**2
        count, bins = power.shape
        rows = np.arange(count)[:, None]
        band = power[:, self._band[0] : self._band[1]].sum(axis=1) + _FLOOR
        peak = power[:, self._peak[0] : self._peak[1]].argmax(axis=1) + self._peak[0]
        lobe = power[rows, peak[:, None] + _OFFSETS].sum(axis=1) + _FLOOR
        purity = np.minimum(lobe / band, 1.0)
        tone_db = 10 * np.log10(lobe / self._full_scale)
        index = np.arange(self._next_frame, self._next_frame + count)
        center_s = (index * self.hop + self.window / 2) / self.rate
        band_db = 10 * np.log10(band / self._full_scale)
        if not np.any((purity >= TONAL_PURITY) & (tone_db >= TONAL_MIN_DB)):
            # No frame can be part of a tone: its frequency and harmonics go unread.
            unread = np.zeros(count)
            return Frames(center_s, unread, purity, tone_db, band_db, unread)
        # The neighbours' energies: f/2, 3f/2 and 2f (clipped to the spectrum).
        around = np.rint(peak * _MULTIPLES).astype(np.intp)
        np.clip(around, LOBE_BINS, bins - 1 - LOBE_BINS, out=around)
        harmonic = power[rows[None], around[..., None] + _OFFSETS].sum(axis=2).max(axis=0)
        # Parabolic interpolation on the log spectrum (exact for a Gaussian peak, within
        # a few Hz for a Hann one).
        left, mid, right = np.log(power[rows, peak[:, None] + _NEIGHBOURS].T + _FLOOR)
        denom = left - 2 * mid + right
        denom[denom == 0] = 1e-9
        offset = np.clip(0.5 * (left - right) / denom, -0.5, 0.5)
        return Frames(
            center_s=center_s,
            peak_hz=(peak + offset) * self.rate / self.window,
            purity=purity,
            tone_db=tone_db,
            band_db=band_db,
            harmonic_db=10 * np.log10((harmonic + _FLOOR) / lobe),
        )


def _bin(hz: float) -> int:
    return int(hz / BIN_HZ)


_EMPTY = Frames(*(np.zeros(0) for _ in range(6)))
