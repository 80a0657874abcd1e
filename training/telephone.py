"""A telephone channel: 8 kHz, band-limited, noisy, level-shifted, sometimes through a
mobile network's codec (GSM 06.10 or AMR-NB, by sox), then a G.711 round trip."""

from __future__ import annotations

import random
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import soxr
from scipy.signal import butter, sosfilt

from bridge.audio.chunk import Encoding
from bridge.audio.codecs import decode_to_int16, encode_from_int16, float_to_int16

PHONE_RATE = 8000
_BAND = butter(4, [300, 3400], btype="bandpass", fs=PHONE_RATE, output="sos")
# The codecs a mobile leg may pass the call through before the PBX's G.711 leg, by sox's
# name for them; AMR-NB at one of its eight modes (4.75 to 12.2 kbit/s).
GSM, AMR_NB = "gsm", "amr-nb"
AMR_MODES = range(8)
_RAW = ["-t", "raw", "-r", str(PHONE_RATE), "-e", "signed-integer", "-b", "16", "-c", "1"]


class CodecError(RuntimeError):
    """A narrowband codec that cannot be run here (sox missing, or built without it)."""


@dataclass(frozen=True)
class ChannelParams:
    snr_db: float  # speech RMS over noise RMS; inf for none
    gain_db: float  # level change applied before the codec
    codec: Encoding  # ULAW or ALAW: the PBX's leg
    mobile: str = ""  # GSM or AMR_NB: a mobile leg's codec before the PBX's; "" for none
    amr_mode: int = 7  # AMR-NB's mode (0 = 4.75 kbit/s ... 7 = 12.2 kbit/s)

    @classmethod
    def sample(cls, rng: random.Random) -> ChannelParams:
        """Peak level -30 to -3 dBFS; a fifth of calls through GSM, a fifth through
        AMR-NB at a random mode."""
        snr_db = rng.choice([float("inf"), 40.0, 30.0, 20.0, 15.0])
        gain_db = rng.uniform(-27.0, 0.0)
        codec = rng.choice([Encoding.ULAW, Encoding.ULAW, Encoding.ALAW])
        draw = rng.random()
        mobile = GSM if draw < 0.2 else AMR_NB if draw < 0.4 else ""
        return cls(snr_db, gain_db, codec, mobile, rng.choice(AMR_MODES))

    @property
    def codec_name(self) -> str:
        """What the manifest's ``codec`` column says: the mobile codec when there was
        one (a G.711 leg always follows it), else the G.711 law."""
        return self.mobile or self.codec.value


def _band(audio: npt.NDArray[np.float32], rate: int) -> npt.NDArray[np.float32]:
    x = soxr.resample(audio.astype(np.float32), rate, PHONE_RATE) if rate != PHONE_RATE else audio
    return sosfilt(_BAND, x).astype(np.float32)


def _peak(banded: npt.NDArray[np.float32]) -> float:
    return float(np.max(np.abs(banded))) or 1.0


def channel_peak(audio: npt.NDArray[np.float32], rate: int) -> float:
    """The peak ``telephone`` scales ``audio`` by (after resampling and band-limiting)."""
    return _peak(_band(audio, rate))


def telephone(
    audio: npt.NDArray[np.float32], rate: int, params: ChannelParams, seed: int
) -> npt.NDArray[np.int16]:
    """Pass float audio through the channel; return 8 kHz int16 as the PBX would decode it."""
    x = _band(audio, rate)
    x = x / _peak(x) * 0.7 * 10 ** (params.gain_db / 20)
    if np.isfinite(params.snr_db):
        speech = x[np.abs(x) > 0.01]
        rms = float(np.sqrt(np.mean(speech**2))) if len(speech) else 0.05
        noise = np.random.default_rng(seed).normal(0, 1, len(x)).astype(np.float32)
        noise = sosfilt(_BAND, noise).astype(np.float32)
        noise *= rms / (float(np.sqrt(np.mean(noise**2))) or 1.0) / 10 ** (params.snr_db / 20)
        x = x + noise
    pcm = float_to_int16(x)
    if params.mobile:
        pcm = mobile_round_trip(pcm, params.mobile, params.amr_mode)
    coded = encode_from_int16(params.codec, pcm)
    return decode_to_int16(params.codec, coded)


def mobile_round_trip(
    pcm: npt.NDArray[np.int16], codec: str, amr_mode: int = 7
) -> npt.NDArray[np.int16]:
    """8 kHz int16 encoded with ``codec`` (GSM or AMR_NB) and decoded again, by sox;
    as long as the input (AMR-NB's 5 ms delay kept, its tail cut)."""
    sox = shutil.which("sox")
    if sox is None:
        raise CodecError("sox is not installed (Debian: apt-get install sox libsox-fmt-base)")
    options = ["-C", str(amr_mode)] if codec == AMR_NB else []
    encode = [sox, *_RAW, "-", "-t", codec, *options, "-"]
    decode = [sox, "-t", codec, "-", *_RAW, "-"]
    coded = _run(encode, pcm.astype("<i2").tobytes(), codec)
    decoded = np.frombuffer(_run(decode, coded, codec), "<i2")
    out = np.zeros(len(pcm), np.int16)
    n = min(len(out), len(decoded))
    out[:n] = decoded[:n]
    return out


def _run(args: list[str], data: bytes, codec: str) -> bytes:
    result = subprocess.run(args, input=data, capture_output=True, timeout=60, check=False)
    if result.returncode != 0:
        raise CodecError(f"sox could not run the {codec} codec: {result.stderr.decode()[:200]}")
    return result.stdout


def beep(rate: int, freq: float = 1000.0, seconds: float = 0.4) -> npt.NDArray[np.float32]:
    t = np.arange(int(rate * seconds)) / rate
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)
    return (0.5 * np.sin(2 * np.pi * freq * t) * ramp).astype(np.float32)
