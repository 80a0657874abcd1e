import warnings

import numpy as np
import pytest

from bridge.audio.chunk import AudioFormat, Encoding
from bridge.audio.codecs import decode_to_int16, encode_from_int16, float_to_int16
from bridge.errors import UnsupportedAudioFormat

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


@pytest.mark.parametrize(
    ("encoding", "reference"),
    [(Encoding.ULAW, audioop.ulaw2lin), (Encoding.ALAW, audioop.alaw2lin)],
)
def test_g711_decoding_matches_audioop_for_every_byte(encoding, reference):
    every_byte = bytes(range(256))
    expected = np.frombuffer(reference(every_byte, 2), dtype="<i2")
    assert np.array_equal(decode_to_int16(encoding, every_byte), expected)


@pytest.mark.parametrize("encoding", [Encoding.ULAW, Encoding.ALAW])
def test_g711_round_trip_error_is_small_relative_to_level(encoding):
    t = np.arange(8000) / 8000
    pcm = float_to_int16(0.5 * np.sin(2 * np.pi * 440 * t))
    back = decode_to_int16(encoding, encode_from_int16(encoding, pcm)).astype(np.float64)
    error = np.sqrt(np.mean((back - pcm) ** 2)) / np.sqrt(np.mean(pcm.astype(np.float64) ** 2))
    assert error < 0.03  # G.711's SNR is about 38 dB for a loud sine


def test_slin_is_little_endian():
    assert decode_to_int16(Encoding.SLIN, b"\x01\x00\x00\x80").tolist() == [1, -32768]


def test_float_to_int16_clips_instead_of_wrapping():
    assert float_to_int16(np.array([1.5, -1.5, 0.0])).tolist() == [32767, -32768, 0]


@pytest.mark.parametrize("rate", [8000, 12000, 16000, 24000, 32000, 44100, 48000])
def test_slin_rates_accepted(rate):
    assert AudioFormat(Encoding.SLIN, rate).bytes_per_sample == 2


@pytest.mark.parametrize(
    ("encoding", "rate"), [(Encoding.ULAW, 16000), (Encoding.ALAW, 48000), (Encoding.SLIN, 11025)]
)
def test_unsupported_formats_are_refused(encoding, rate):
    with pytest.raises(UnsupportedAudioFormat):
        AudioFormat(encoding, rate)


def test_parse_accepts_the_names_pbxs_use():
    assert AudioFormat.parse("PCMU", 8000) == AudioFormat(Encoding.ULAW, 8000)
    assert AudioFormat.parse("l16", 16000) == AudioFormat(Encoding.SLIN, 16000)
    with pytest.raises(UnsupportedAudioFormat, match="unknown encoding"):
        AudioFormat.parse("opus", 48000)


def test_duration_counts_bytes_per_sample():
    assert AudioFormat(Encoding.SLIN, 8000).duration(320) == pytest.approx(0.02)
    assert AudioFormat(Encoding.ULAW, 8000).duration(160) == pytest.approx(0.02)
