"""CSV manifests in, bad rows written aside with their reason.

Classification manifests have ``label`` (human|machine) and either ``text``
(a transcript) or ``path`` (a recording, relative to the CSV's folder or
absolute); an optional ``template`` (or ``group``) column keeps variants of one
template on the same side of the held-out split, and an optional ``split``
column (train|test) fixes the sides, as ``amd-train corpus`` writes them.
ASR manifests have ``path`` and ``transcription`` (or ``text``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from training.conditions import BABBLE, MUSIC, NOISE, NONE, background_of

if TYPE_CHECKING:
    from bridge.audio import AudioFormat

LABELS = ("human", "machine")
SPLITS = ("train", "test")


@dataclass(frozen=True)
class LabelledRow:
    label: str
    group: str
    text: str | None = None
    path: Path | None = None
    split: str | None = None  # train|test from the manifest, else the split is drawn
    # What the evaluation reports by (``FACETS``), where the manifest says it.
    facets: tuple[tuple[str, str], ...] = ()


# Columns a report breaks its figures down by: the callee's answer, the kind of call it
# is (``text_class``), the voice's family (``voice_family``), the channel's condition,
# how loud what is behind the callee is (``background``) and the codec.
FACETS = ("label", "text_class", "voice_family", "condition", "background", "codec")
# Bands of ``background_db``: dB below the callee for talk and music, SNR for band noise.
BACKGROUND_BANDS = {BABBLE: ("talk", 10.0), MUSIC: ("music", 15.0), NOISE: ("noise", 25.0)}


def voice_family(voice: str) -> str:
    """An espeak-ng voice without its variant (en-gb+f2 -> en-gb); piper's joe at any
    pitch (joe-low -> joe)."""
    name = voice.split("+")[0]
    return "joe" if name.startswith("joe") else name


def background_band(condition: str, background_db: float | None) -> str | None:
    """``talk 0-10 dB below``, ``music 15+ dB below``, ``noise SNR 25+ dB`` or ``none``:
    the condition (lost frames aside) and which side of its band's middle it lies."""
    kind = background_of(condition)
    if kind == NONE:
        return NONE
    if kind not in BACKGROUND_BANDS or background_db is None:
        return None
    name, middle = BACKGROUND_BANDS[kind]
    side = f"0-{middle:.0f}" if background_db < middle else f"{middle:.0f}+"
    return f"{name} SNR {side} dB" if kind == NOISE else f"{name} {side} dB below"


def _facets(row: dict[str, str]) -> tuple[tuple[str, str], ...]:
    found = {"label": row["label"].lower()}
    if row.get("voice"):
        found["voice_family"] = voice_family(row["voice"])
    for column in ("text_class", "condition", "codec"):
        if row.get(column):
            found[column] = row[column]
    band = background_band(row.get("condition") or "", float_or_none(row.get("background_db")))
    if band:
        found["background"] = band
    return tuple((f, found[f]) for f in FACETS if f in found)


@dataclass
class ManifestReport:
    rows: list[LabelledRow]
    bad: list[tuple[dict[str, str], str]]

    def write_bad_rows(self, path: Path) -> None:
        fields: list[str] = []
        for row, _ in self.bad:
            fields.extend(k for k in row if k not in fields)
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, [*fields, "reason"])
            writer.writeheader()
            for row, reason in self.bad:
                writer.writerow({**row, "reason": reason})


class ManifestError(ValueError):
    """The manifest as a whole is unusable (missing file or columns)."""


def _read_csv(path: Path) -> tuple[set[str], list[dict[str, str]]]:
    """The CSV's columns and its rows, every value stripped (a BOM is allowed)."""
    try:
        fh = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ManifestError(f"cannot open manifest {path}: {exc}") from exc
    with fh:
        reader = csv.DictReader(fh)
        columns = set(reader.fieldnames or ())
        # The seed's CSVs (and bulk-eval's results) call the recording's column "file".
        alias = {"file": "path"} if "file" in columns and "path" not in columns else {}
        rows = [
            {alias.get(k, k): (v or "").strip() for k, v in row.items() if k is not None}
            for row in reader
        ]
        return {alias.get(c, c) for c in columns}, rows


def read_16k(path: Path) -> npt.NDArray[np.float32]:
    """A recording as the engine hears it: 16 kHz mono float (raises AudioFileError)."""
    from bridge.cli.audio_files import read_audio_file

    return as_16k(*read_audio_file(path))


def as_16k(fmt: AudioFormat, data: bytes) -> npt.NDArray[np.float32]:
    """Audio read by ``read_audio_file`` as the engine hears it: 16 kHz mono float."""
    from bridge.audio import CallAudio

    audio = CallAudio(fmt)
    return np.concatenate([audio.push(data), audio.flush()]).astype(np.float32)


def read_classification_manifest(path: Path) -> ManifestReport:
    columns, rows = _read_csv(path)
    if "label" not in columns or not ({"text", "path"} & columns):
        raise ManifestError(
            f"{path}: needs a 'label' column and a 'text' or 'path' (or 'file') column, "
            f"has {sorted(columns)}"
        )
    report = ManifestReport([], [])
    for n, row in enumerate(rows, start=2):
        reason = _check(row, path.parent)
        if reason:
            report.bad.append((row, reason))
            continue
        label = row["label"].lower()
        group = row.get("template") or row.get("group") or f"row{n}"
        split = row.get("split") or None
        where = _resolve(row["path"], path.parent) if row.get("path") else None
        report.rows.append(LabelledRow(label, group, row.get("text"), where, split, _facets(row)))
    return report


def _resolve(raw: str, base: Path) -> Path:
    p = Path(raw).expanduser()
    return p if p.is_absolute() else base / p


def _check(row: dict[str, str], base: Path) -> str | None:
    if row.get("label", "").lower() not in LABELS:
        return f"label {row.get('label')!r} is not human or machine"
    if row.get("split", "") not in ("", *SPLITS):
        return f"split {row['split']!r} is not train or test"
    if row.get("path"):
        return _check_file(row["path"], base)
    if not row.get("text"):
        return "empty " + " and ".join(c for c in ("path", "text") if c in row)
    return None


@dataclass(frozen=True)
class TranscribedRow:
    path: Path
    text: str
    split: str | None = None
    condition: str = ""  # the corpus's channel condition (babble, music, ...), if given
    background_db: float | None = None  # how far below the talker it is, if given
    clean_path: Path | None = None  # the talker alone through the same channel, if given
    codec: str = ""  # the channel's last codec (ulaw, alaw, gsm, amr-nb), if given
    lost_share: float = 0.0  # share of 20 ms frames lost, if given


@dataclass
class AsrManifest:
    rows: list[TranscribedRow]
    bad: list[tuple[dict[str, str], str]]

    write_bad_rows = ManifestReport.write_bad_rows

    def clips(self, seconds: float) -> list[tuple[TranscribedRow, npt.NDArray[np.float32]]]:
        """Each row's audio as 16 kHz float, cut at ``seconds``; an unreadable file
        becomes a bad row with its reason."""
        from bridge.audio.resampler import TARGET_RATE
        from bridge.errors import AudioFileError

        out = []
        for row in self.rows:
            try:
                pcm = read_16k(row.path)
            except AudioFileError as exc:
                self.bad.append(({"path": str(row.path), "transcription": row.text}, str(exc)))
                continue
            out.append((row, pcm[: int(seconds * TARGET_RATE)]))
        return out


def read_asr_manifest(path: Path) -> AsrManifest:
    """``path`` plus ``transcription`` (or ``text``); optional columns ``split``,
    ``condition``, ``background_db``, ``clean_path`` (the clip's clean twin), ``codec``
    and ``lost_share``."""
    columns, rows = _read_csv(path)
    text_column = next((c for c in ("transcription", "text") if c in columns), None)
    if "path" not in columns or text_column is None:
        raise ManifestError(
            f"{path}: needs 'path' and 'transcription' (or 'text') columns, has {sorted(columns)}"
        )
    report = AsrManifest([], [])
    for row in rows:
        reason = _check_file(row.get("path", ""), path.parent)
        if reason is None and not row[text_column]:
            reason = "empty transcription"
        if reason is None and row.get("clean_path"):
            reason = _check_file(row["clean_path"], path.parent)
            reason = reason and f"clean_path: {reason}"
        if reason is None and row.get("split", "") not in ("", *SPLITS):
            reason = f"split {row['split']!r} is not train or test"
        if reason:
            report.bad.append((row, reason))
            continue
        report.rows.append(
            TranscribedRow(
                _resolve(row["path"], path.parent),
                row[text_column],
                row.get("split") or None,
                row.get("condition") or "",
                float_or_none(row.get("background_db")),
                _resolve(row["clean_path"], path.parent) if row.get("clean_path") else None,
                row.get("codec") or "",
                float_or_none(row.get("lost_share")) or 0.0,
            )
        )
    return report


def float_or_none(raw: str | None) -> float | None:
    """A CSV cell as a number; None when it is empty or not one."""
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def _check_file(raw: str, base: Path) -> str | None:
    if not raw:
        return "empty path"
    p = _resolve(raw, base)
    if not p.is_file():
        return f"file {p} does not exist"
    if p.stat().st_size == 0:
        return f"file {p} is empty"
    return None
