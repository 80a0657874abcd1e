"""CSV manifests in, bad rows written aside with their reason.

Classification manifests have ``label`` (human|machine) and either ``text``
(a transcript) or ``path`` (a recording, relative to the CSV's folder or
absolute); an optional ``template`` (or ``group``) column keeps variants of one
template on the same side of the held-out split.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

LABELS = ("human", "machine")


@dataclass(frozen=True)
class LabelledRow:
    label: str
    group: str
    text: str | None = None
    path: Path | None = None


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


def read_classification_manifest(path: Path) -> ManifestReport:
    try:
        fh = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ManifestError(f"cannot open manifest {path}: {exc}") from exc
    with fh:
        reader = csv.DictReader(fh)
        columns = set(reader.fieldnames or ())
        if "label" not in columns or not ({"text", "path"} & columns):
            raise ManifestError(
                f"{path}: needs a 'label' column and a 'text' or 'path' column, "
                f"has {sorted(columns)}"
            )
        report = ManifestReport([], [])
        for n, row in enumerate(reader, start=2):
            row = {k: (v or "").strip() for k, v in row.items() if k is not None}
            reason = _check(row, path.parent)
            if reason:
                report.bad.append((row, reason))
                continue
            label = row["label"].lower()
            group = row.get("template") or row.get("group") or f"row{n}"
            if row.get("path"):
                report.rows.append(
                    LabelledRow(label, group, row.get("text"), _resolve(row["path"], path.parent))
                )
            else:
                report.rows.append(LabelledRow(label, group, row["text"]))
    return report


def _resolve(raw: str, base: Path) -> Path:
    p = Path(raw).expanduser()
    return p if p.is_absolute() else base / p


def _check(row: dict[str, str], base: Path) -> str | None:
    if row.get("label", "").lower() not in LABELS:
        return f"label {row.get('label')!r} is not human or machine"
    if row.get("path"):
        p = _resolve(row["path"], base)
        if not p.is_file():
            return f"file {p} does not exist"
        if p.stat().st_size == 0:
            return f"file {p} is empty"
        return None
    if not row.get("text"):
        return "empty text"
    return None
