"""Groups tonal frames into tones and names them: a voicemail beep, fax, or SIT.

A tone is a run of frames whose energy is concentrated on one frequency
(purity), whose frequency stays within 1.5 % and whose level stays within 6 dB
of its loudest frame. When a run ends it is judged:

* **BEEP**: 400-2000 Hz, 100-1500 ms, standing out from what came before (10 dB
  over the noise floor, no quieter than the 200 ms before it), steady in its
  middle (frequency within 3 Hz or 0.4 %, level within 3 dB), with no
  harmonics beside it (a voice's strong harmonic has its neighbours), and alone
  (no other steady tone in the second before it or straight after it: a melody
  of pure notes is music). Dual tones (ringback 440+480 Hz, busy, dial, DTMF)
  never form a run: two tones share the energy, so no frame is pure enough.
* **FAX**: CED (2100 Hz, reported once it has lasted 500 ms, without waiting
  for its 2.6-4 s end) or CNG (1100 Hz, 0.5 s) when no speech came before it:
  after a greeting, an 1100 Hz half-second tone is a beep.
* **SIT**: the special information tones before "the number you have dialed is
  not in service": 913.8 or 985.2 Hz, then 1370.6 or 1428.5 Hz, then 1776.7 Hz,
  each 274 or 380 ms, back to back (Telcordia GR-1162 / ITU-T E.180).

The tracker also follows the noise floor and when speech (loud audio that is
not a tone) was last heard, which is what "silence after the greeting" needs.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

from bridge.audio.codecs import Float32Array
from bridge.tones.spectrum import (
    BATCH_FRAMES,
    HOP_S,
    TONAL_MIN_DB,
    TONAL_PURITY,
    WINDOW_S,
    FrameAnalyzer,
    Frames,
)

FREQ_TOLERANCE = 0.015  # frames of one tone stay within 1.5 % (at least 10 Hz) of its start
LEVEL_DROP_DB = 6.0  # a frame this far below the tone's loudest ends it (or is its edge)
STAND_OUT_DB = 10.0  # a beep is this much louder than the noise floor before it ...
RECENT_FRAMES = 20  # ... and no quieter than the median of the 200 ms before it
SPEECH_OVER_FLOOR_DB = 12.0  # loud, non-tonal audio this far over the floor is speech
SPEECH_MIN_DB = -50.0
FLOOR_RISE_DB = 0.03  # per frame (3 dB/s): the floor follows the quietest audio

BEEP_HZ = (380.0, 2050.0)  # 400-2000 Hz with the frequency tolerance
BEEP_S = (0.1, 1.5)
CED_HZ, CED_TOLERANCE_HZ, CED_REPORT_S = 2100.0, 25.0, 0.5
CNG_HZ, CNG_TOLERANCE_HZ, CNG_S = 1100.0, 38.0, (0.35, 0.75)
SIT_HZ = ((913.8, 985.2), (1370.6, 1428.5), (1776.7,))
SIT_TOLERANCE = 0.02
SIT_SEGMENT_S = (0.2, 0.45)  # 274 or 380 ms each
SIT_GAP_S = 0.12  # between one tone's end and the next one's start
# A beep shaped like SIT's first or second tone is a beep once this long has passed
# after it with no SIT: the rest of the three would have come by then.
SIT_WAIT_S = 2 * (SIT_GAP_S + SIT_SEGMENT_S[1])
EDGE_FRAMES = 3  # frames at each end whose 64 ms window reaches past the tone
STEADY_HZ, STEADY_SHARE = 3.0, 0.004  # a beep's middle wobbles less (in frequency) ...
STEADY_DB = 3.0  # ... and in level
# A voice's harmonic has neighbours (f/2, 3f/2, 2f) within about 10 dB of it; a beep's
# are noise, under -25 dB even at 10 dB SNR through mu-law (measured, 240 tones).
HARMONIC_MAX_DB = -20.0
# Melodies (music on hold made of pure notes) are runs of steady tones; a beep
# comes alone: no steady tone ended within this before it, and none follows at once.
ISOLATION_S = 1.0
MAX_KEPT_FRAMES = 200  # 2 s: longer runs are continuous tones, only counted


class ToneKind(enum.Enum):
    BEEP = "BEEP"
    FAX = "FAX"
    SIT = "SIT"


@dataclass(frozen=True)
class ToneEvent:
    kind: ToneKind
    start_s: float  # audio time the tone began (for SIT: the first of the three)
    end_s: float  # audio time it ended (for CED: when it was reported)
    freq_hz: float
    detected_s: float  # audio time by which the tracker knew


def could_start_sit(tone: ToneEvent) -> bool:
    """Whether a beep has the frequency and length of SIT's first or second tone."""
    if not SIT_SEGMENT_S[0] <= tone.end_s - tone.start_s <= SIT_SEGMENT_S[1]:
        return False
    return any(
        abs(tone.freq_hz - f) <= SIT_TOLERANCE * f for expected in SIT_HZ[:2] for f in expected
    )


@dataclass
class _Run:
    ref_hz: float
    floor_db: float | None  # the noise floor when the run began (None: nothing came before)
    before_db: float | None  # median band level of the 200 ms before it (None: nothing)
    centers: list[float] = field(default_factory=list)
    levels: list[float] = field(default_factory=list)
    freqs: list[float] = field(default_factory=list)
    purities: list[float] = field(default_factory=list)
    harmonics: list[float] = field(default_factory=list)
    frames: int = 0
    max_db: float = -200.0
    last_center: float = 0.0
    reported: bool = False  # CED already reported

    def add(self, center: float, level: float, freq: float, purity: float, harmonic: float) -> None:
        self.frames += 1
        self.last_center = center
        self.max_db = max(self.max_db, level)
        if len(self.centers) < MAX_KEPT_FRAMES:
            self.centers.append(center)
            self.levels.append(level)
            self.freqs.append(freq)
            self.purities.append(purity)
            self.harmonics.append(harmonic)

    def near(self, freq: float) -> bool:
        return abs(freq - self.ref_hz) <= max(10.0, FREQ_TOLERANCE * self.ref_hz)

    def accepts(self, freq: float, level: float) -> bool:
        return self.near(freq) and level >= self.max_db - LEVEL_DROP_DB

    def steady(self) -> bool:
        """Whether the tone's middle (frames whose window lies inside it) holds its
        frequency and level as a generator does, with no harmonics beside it; a
        voice's harmonic wavers more and has its neighbours."""
        inner = len(self.freqs) - 2 * EDGE_FRAMES
        if inner < 1:
            return False
        freqs = self.freqs[EDGE_FRAMES:-EDGE_FRAMES]
        levels = self.levels[EDGE_FRAMES:-EDGE_FRAMES]
        wobble_hz = max(freqs) - min(freqs)
        harmonic = sorted(self.harmonics)[len(self.harmonics) // 2]
        return (
            wobble_hz <= max(STEADY_HZ, STEADY_SHARE * self.ref_hz)
            and max(levels) - min(levels) <= STEADY_DB
            and harmonic <= HARMONIC_MAX_DB
        )

    def span(self) -> tuple[float, float, float]:
        """(start, end, frequency) of the run without edge frames 6 dB under its peak.

        With the 6 dB rule the first and last frames kept are centred within half a
        hop of the tone's edges (measured on 200 generated tones: mean error under
        1 ms), so their centres are the tone's start and end."""
        keep = [i for i, level in enumerate(self.levels) if level >= self.max_db - LEVEL_DROP_DB]
        first = self.centers[keep[0]] if keep else self.centers[0]
        freqs = [self.freqs[i] for i in keep] or self.freqs
        freq = sorted(freqs)[len(freqs) // 2]
        return first, self.last_center, freq


class ToneTracker:
    """Feed float audio at ``rate`` from the start of the call; get the tones it holds."""

    def __init__(self, rate: int, batch_frames: int = BATCH_FRAMES) -> None:
        self._frames = FrameAnalyzer(rate, batch_frames)
        self._run: _Run | None = None
        self._closed: deque[tuple[float, float, float]] = deque(maxlen=3)  # for SIT
        self._floor_db: float | None = None
        self.audio_s = 0.0  # audio analysed so far (up to the last frame's end)
        self._steady_end_s: float | None = None  # end of the last steady tone
        self._recent: deque[float] = deque(maxlen=RECENT_FRAMES)  # band levels, newest last
        self._tonal_s = -1.0  # centre of the last tonal frame
        # Centres of the latest speech frames (a window's worth), and the one before.
        self._speech: deque[float] = deque(maxlen=8)
        self._older_speech_s: float | None = None  # centre of the last speech frame
        self.first_speech_s: float | None = None  # centre of the first speech frame
        self.events: list[ToneEvent] = []  # every tone found so far, oldest first

    def hurry(self) -> None:
        """Report tones with the least delay from now on (a beep is awaited)."""
        self._frames.batch_frames = BATCH_FRAMES

    @property
    def last_speech_s(self) -> float | None:
        """Centre of the last frame of speech (loud audio that is not a tone)."""
        return self._speech[-1] if self._speech else self._older_speech_s

    def feed(self, samples: Float32Array) -> list[ToneEvent]:
        return self._take(self._frames.feed(samples))

    def end(self) -> list[ToneEvent]:
        """The stream ended: analyse what is held back and judge a tone still running."""
        found = self._take(self._frames.flush())
        run, self._run = self._run, None
        last = self._judge(run) if run is not None else []
        self.events.extend(last)
        return found + last

    def _take(self, frames: Frames) -> list[ToneEvent]:
        self.audio_s = self._frames.fed_s
        found: list[ToneEvent] = []
        for i in range(len(frames)):
            found.extend(self._frame(frames, i))
        self.events.extend(found)
        return found

    def _frame(self, frames: Frames, i: int) -> list[ToneEvent]:
        center = float(frames.center_s[i])
        freq, purity = float(frames.peak_hz[i]), float(frames.purity[i])
        level, band = float(frames.tone_db[i]), float(frames.band_db[i])
        harmonic = float(frames.harmonic_db[i])
        floor_before = self._floor_db
        floor = self._track_floor(band)
        tonal = purity >= TONAL_PURITY and level >= TONAL_MIN_DB
        # Speech is loud audio that is not a tone, nor a window holding a tone's
        # start or end (whose spectrum is smeared).
        if tonal:
            self._tonal_s = center
            while self._speech and self._speech[-1] > center - WINDOW_S:
                self._speech.pop()
            if not self._speech and self._older_speech_s is None:
                self.first_speech_s = None  # it was the tone's smeared start
        elif band >= max(floor + SPEECH_OVER_FLOOR_DB, SPEECH_MIN_DB) and (
            center - self._tonal_s > WINDOW_S
        ):
            if len(self._speech) == self._speech.maxlen:
                self._older_speech_s = self._speech[0]
            self._speech.append(center)
            if self.first_speech_s is None:
                self.first_speech_s = center
        found: list[ToneEvent] = []
        run = self._run
        self._recent.append(band)
        if run is not None and tonal and run.accepts(freq, level):
            run.add(center, level, freq, purity, harmonic)
            return self._ced(run)
        if run is not None:
            self._run = None
            # A different tone straight after this one: a melody, not a beep.
            found.extend(self._judge(run, next_tone=tonal and not run.near(freq)))
        if tonal:
            before = sorted(self._recent)[len(self._recent) // 2] if self._recent else None
            self._run = _Run(ref_hz=freq, floor_db=floor_before, before_db=before)
            self._run.add(center, level, freq, purity, harmonic)
        return found

    def _track_floor(self, band_db: float) -> float:
        if self._floor_db is None or band_db < self._floor_db:
            self._floor_db = band_db
        else:
            self._floor_db += FLOOR_RISE_DB
        return self._floor_db

    def _ced(self, run: _Run) -> list[ToneEvent]:
        if run.reported or abs(run.ref_hz - CED_HZ) > CED_TOLERANCE_HZ:
            return []
        start, end, freq = run.span()
        if end - start < CED_REPORT_S:
            return []
        run.reported = True
        return [ToneEvent(ToneKind.FAX, start, end, freq, self.audio_s)]

    def _judge(self, run: _Run, next_tone: bool = False) -> list[ToneEvent]:
        if run.reported:
            return []
        start, end, freq = run.span()
        duration = end - start
        steady = run.steady()
        isolated = self._steady_end_s is None or start - self._steady_end_s >= ISOLATION_S
        if steady:
            self._steady_end_s = end
        self._closed.append((start, end, freq))
        if self._is_sit():
            first = self._closed[0]
            self._closed.clear()
            return [ToneEvent(ToneKind.SIT, first[0], end, first[2], self.audio_s)]
        if run.frames > MAX_KEPT_FRAMES:
            return []  # a continuous tone
        if (
            abs(freq - CNG_HZ) <= CNG_TOLERANCE_HZ
            and CNG_S[0] <= duration <= CNG_S[1]
            and self.last_speech_s is None
        ):
            return [ToneEvent(ToneKind.FAX, start, end, freq, self.audio_s)]
        if (
            BEEP_HZ[0] <= freq <= BEEP_HZ[1]
            and BEEP_S[0] - HOP_S / 2 <= duration <= BEEP_S[1] + HOP_S / 2
            and (run.floor_db is None or run.max_db >= run.floor_db + STAND_OUT_DB)
            and (run.before_db is None or run.max_db >= run.before_db)
            and steady
            and isolated
            and not next_tone
        ):
            return [ToneEvent(ToneKind.BEEP, start, end, freq, self.audio_s)]
        return []

    def _is_sit(self) -> bool:
        if len(self._closed) < 3:
            return False
        tones = list(self._closed)
        for (start, end, freq), expected in zip(tones, SIT_HZ, strict=True):
            if not SIT_SEGMENT_S[0] <= end - start <= SIT_SEGMENT_S[1]:
                return False
            if not any(abs(freq - f) <= SIT_TOLERANCE * f for f in expected):
                return False
        return all(b[0] - a[1] <= SIT_GAP_S for a, b in zip(tones, tones[1:], strict=False))
