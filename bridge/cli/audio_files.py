"""Reading recordings from disk into (format, bytes) for a call session.

Asterisk's raw formats are recognised by extension (``.ul``/``.ulaw``,
``.al``/``.alaw``, ``.sln``, ``.sln16`` ...); anything else is decoded with
PyAV (WAV in any codec, MP3, FLAC, OGG ...) to mono slin at its own rate when
that is a rate a PBX could send, else at 16 kHz.
"""

from __future__ import annotations

from pathlib import Path

from bridge.audio.chunk import SLIN_RATES, AudioFormat, Encoding
from bridge.errors import AudioFileError, UnsupportedAudioFormat

# Asterisk's names for headerless audio files (formats/format_pcm.c, format_sln.c).
RAW_FORMATS = {
    ".ul": AudioFormat(Encoding.ULAW, 8000),
    ".ulaw": AudioFormat(Encoding.ULAW, 8000),
    ".pcm": AudioFormat(Encoding.ULAW, 8000),
    ".al": AudioFormat(Encoding.ALAW, 8000),
    ".alaw": AudioFormat(Encoding.ALAW, 8000),
    ".sln": AudioFormat(Encoding.SLIN, 8000),
    ".raw": AudioFormat(Encoding.SLIN, 8000),
    ".sln12": AudioFormat(Encoding.SLIN, 12000),
    ".sln16": AudioFormat(Encoding.SLIN, 16000),
    ".sln24": AudioFormat(Encoding.SLIN, 24000),
    ".sln32": AudioFormat(Encoding.SLIN, 32000),
    ".sln44": AudioFormat(Encoding.SLIN, 44100),
    ".sln48": AudioFormat(Encoding.SLIN, 48000),
    ".sln96": AudioFormat(Encoding.SLIN, 96000),
    ".sln192": AudioFormat(Encoding.SLIN, 192000),
}
# A recording longer than this is cut: decisions never need more than 30 s.
MAX_FILE_SECONDS = 30.0


def read_audio_file(path: Path) -> tuple[AudioFormat, bytes]:
    """Return the file's audio (at most ``MAX_FILE_SECONDS``) or raise ``AudioFileError``
    with a reason a person can act on: file not found, empty file, not an audio file."""
    _check_readable(path)
    raw_format = RAW_FORMATS.get(path.suffix.lower())
    try:
        if raw_format is not None:
            limit = int(MAX_FILE_SECONDS * raw_format.rate * raw_format.bytes_per_sample)
            with path.open("rb") as fh:
                data = fh.read(limit)
            fmt = raw_format
        else:
            fmt, data = _decode_with_av(path)
    except AudioFileError:
        raise
    except OSError as exc:
        raise AudioFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnsupportedAudioFormat as exc:
        raise AudioFileError(f"{path}: {exc}") from exc
    if not data:
        raise AudioFileError(f"{path}: no audio in file")
    return fmt, data


def _check_readable(path: Path) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise AudioFileError(f"{path}: file not found") from None
    except OSError as exc:
        raise AudioFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if path.is_dir():
        raise AudioFileError(f"{path}: a folder, not a file")
    if size == 0:
        raise AudioFileError(f"{path}: empty file")


def _decode_with_av(path: Path) -> tuple[AudioFormat, bytes]:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioFileError(f"{path}: no audio stream")
            stream = container.streams.audio[0]
            rate = stream.rate if stream.rate in SLIN_RATES else 16000
            resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
            limit = int(MAX_FILE_SECONDS * rate * 2)
            parts: list[bytes] = []
            size = 0
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunk = bytes(out.planes[0])[: out.samples * 2]
                    parts.append(chunk)
                    size += len(chunk)
                if size >= limit:
                    break
            else:
                for out in resampler.resample(None):
                    parts.append(bytes(out.planes[0])[: out.samples * 2])
    except AudioFileError:
        raise
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        # FFmpeg's own words, without its error number and the path again
        reason = getattr(exc, "strerror", None) or str(exc)
        raise AudioFileError(f"{path}: not an audio file ({reason})") from exc
    return AudioFormat(Encoding.SLIN, rate), b"".join(parts)[:limit]
