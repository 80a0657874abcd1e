import wave

import numpy as np
import pytest

from bridge.audio.chunk import AudioFormat, Encoding
from bridge.cli.audio_files import MAX_FILE_SECONDS, read_audio_file
from bridge.errors import AudioFileError


def _wav(path, rate: int, samples: np.ndarray, channels: int = 1) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())


@pytest.mark.parametrize(
    ("suffix", "fmt"),
    [
        (".ul", AudioFormat(Encoding.ULAW, 8000)),
        (".alaw", AudioFormat(Encoding.ALAW, 8000)),
        (".sln", AudioFormat(Encoding.SLIN, 8000)),
        (".sln16", AudioFormat(Encoding.SLIN, 16000)),
        (".sln48", AudioFormat(Encoding.SLIN, 48000)),
    ],
)
def test_asterisk_raw_formats_by_extension(tmp_path, suffix, fmt):
    path = tmp_path / f"greeting{suffix}"
    path.write_bytes(b"\x12\x34" * 400)
    assert read_audio_file(path) == (fmt, b"\x12\x34" * 400)


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_wav_keeps_a_pbx_rate(tmp_path, rate):
    samples = (np.sin(np.arange(rate // 10) / 5) * 8000).astype(np.int16)
    _wav(tmp_path / "a.wav", rate, samples)
    fmt, data = read_audio_file(tmp_path / "a.wav")
    assert fmt == AudioFormat(Encoding.SLIN, rate)
    assert np.array_equal(np.frombuffer(data, "<i2"), samples)


def test_wav_at_an_odd_rate_and_in_stereo_becomes_16k_mono(tmp_path):
    stereo = np.zeros(22050 * 2, dtype=np.int16)
    _wav(tmp_path / "b.wav", 22050, stereo, channels=2)
    fmt, data = read_audio_file(tmp_path / "b.wav")
    assert fmt == AudioFormat(Encoding.SLIN, 16000)
    assert len(data) == pytest.approx(16000 * 2, rel=0.01)


def test_long_recordings_are_cut(tmp_path):
    path = tmp_path / "long.ul"
    path.write_bytes(b"\xff" * 8000 * 40)
    _, data = read_audio_file(path)
    assert len(data) == 8000 * MAX_FILE_SECONDS


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.ul", b"", "empty file$"),
        ("empty.wav", b"", "empty file$"),
        (
            "text.wav",
            b"this is not audio at all",
            r"not an audio file \(Invalid data found when processing input\)$",
        ),
        ("zero.wav", None, "no audio"),
    ],
)
def test_unusable_files_raise_audio_file_error(tmp_path, name, content, message):
    path = tmp_path / name
    if content is None:
        _wav(path, 8000, np.zeros(0, np.int16))
    else:
        path.write_bytes(content)
    with pytest.raises(AudioFileError, match=message):
        read_audio_file(path)


def test_missing_file_and_folder_say_so_once(tmp_path):
    for name in ("nope.wav", "nope.ul"):
        with pytest.raises(AudioFileError) as caught:
            read_audio_file(tmp_path / name)
        assert str(caught.value) == f"{tmp_path / name}: file not found"
    with pytest.raises(AudioFileError, match="a folder, not a file"):
        read_audio_file(tmp_path)
