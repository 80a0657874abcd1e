import random

import numpy as np
import pytest

from bridge.audio import AudioFormat, CallAudio, Encoding
from bridge.audio.codecs import encode_from_int16, float_to_int16
from bridge.errors import UnsupportedAudioFormat


def _sine(rate: int, seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return 0.5 * np.sin(2 * np.pi * freq * t)


def _stream(fmt: AudioFormat, data: bytes, sizes: list[int]) -> np.ndarray:
    audio = CallAudio(fmt)
    out, pos = [], 0
    for size in sizes:
        out.append(audio.push(data[pos : pos + size]))
        pos += size
    out.append(audio.push(data[pos:]))
    out.append(audio.flush())
    return np.concatenate(out)


@pytest.mark.parametrize("rate", [8000, 12000, 24000, 32000, 44100, 48000])
def test_chunking_does_not_change_the_output(rate):
    """Random chunk edges (odd byte counts included) give the same samples as one push."""
    fmt = AudioFormat(Encoding.SLIN, rate)
    data = encode_from_int16(Encoding.SLIN, float_to_int16(_sine(rate, 1.0)))
    whole = _stream(fmt, data, [])
    rng = random.Random(rate)
    sizes = [rng.randint(1, 999) for _ in range(len(data) // 500)]
    chunked = _stream(fmt, data, sizes)
    assert len(whole) == len(chunked)
    assert np.max(np.abs(whole - chunked)) < 1e-5


def test_no_clicks_at_20ms_frame_edges():
    """A continuous sine stays continuous: no sample-to-sample jump beyond the sine's own."""
    rate = 8000
    fmt = AudioFormat(Encoding.SLIN, rate)
    data = encode_from_int16(Encoding.SLIN, float_to_int16(_sine(rate, 2.0, freq=300.0)))
    out = _stream(fmt, data, [320] * (len(data) // 320))
    steady = out[2000:-2000]  # away from the filter's start-up and end
    max_step = 0.5 * 2 * np.pi * 300 / 16000  # the steepest slope of the 16 kHz sine
    assert np.max(np.abs(np.diff(steady))) < max_step * 1.05
    expected = 0.5 * np.sin(2 * np.pi * 300 * np.arange(len(out)) / 16000)
    lag = int(np.argmax(np.correlate(out[4000:6000], expected[4000:6400], mode="valid")))
    assert lag == 0 or abs(lag) < 400  # output is the same tone, in step


@pytest.mark.parametrize("encoding", [Encoding.ULAW, Encoding.ALAW])
def test_g711_is_upsampled_to_16k(encoding):
    fmt = AudioFormat(encoding, 8000)
    data = encode_from_int16(encoding, float_to_int16(_sine(8000, 1.0)))
    out = _stream(fmt, data, [160] * 50)
    assert len(out) == pytest.approx(16000, abs=2)
    assert out.dtype == np.float32
    assert 0.3 < np.sqrt(np.mean(out[1000:-1000] ** 2)) < 0.4  # a 0.5 sine's RMS is 0.354


def test_16k_slin_passes_through_unchanged():
    fmt = AudioFormat(Encoding.SLIN, 16000)
    pcm = float_to_int16(_sine(16000, 0.1))
    out = _stream(fmt, encode_from_int16(Encoding.SLIN, pcm), [3, 5, 7])
    assert np.array_equal(out, pcm.astype(np.float32) / 32768)


def test_input_clock_counts_samples_received():
    audio = CallAudio(AudioFormat(Encoding.ULAW, 8000))
    audio.push(b"\xff" * 8000)
    assert audio.input_seconds == pytest.approx(1.0)


def test_format_change_mid_call_is_refused():
    audio = CallAudio(AudioFormat(Encoding.SLIN, 8000))
    with pytest.raises(UnsupportedAudioFormat, match="format changed"):
        audio.push(b"\x00\x00", AudioFormat(Encoding.SLIN, 16000))


def test_push_after_flush_is_a_programming_error():
    audio = CallAudio(AudioFormat(Encoding.SLIN, 8000))
    audio.flush()
    with pytest.raises(RuntimeError):
        audio.push(b"\x00\x00")
