"""``amd-train bulk-eval``: decide a folder or CSV of recordings (100k+) into a CSV.

Output columns are the seed project's (``file,type,label,confidence,proba_human,
transcript,elapsed_ms``): ``type`` is ``final`` for a decided file and ``error``
for one that could not be read (the reason is in ``transcript``).

- **Resumable**: rows are appended and flushed one at a time; a rerun reads the
  files already in the CSV, skips them, and first cuts a last line that an
  interruption left half-written. No file is decided twice or written twice.
- **In process** (default): the files go through the same call session and
  batching engine as live calls, ``batch_size x workers`` at a time, read in a
  worker thread; the input list is walked lazily, so 100k files cost no more
  memory than a few.
- **Over ``/ws/amd``** (``--url``): the seed's way, each file streamed as a call,
  ``--concurrency`` at a time, to a running service.
- A progress line (done, rate, ETA) goes to stderr.
"""

from __future__ import annotations

import asyncio
import csv
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO
from urllib.parse import urlencode

from bridge.cli.audio_files import RAW_FORMATS, read_audio_file
from bridge.errors import AmdError
from bridge.session.decision import Decision

log = logging.getLogger(__name__)

COLUMNS = ("file", "type", "label", "confidence", "proba_human", "transcript", "elapsed_ms")
AUDIO_SUFFIXES = frozenset({".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", *RAW_FORMATS})


class BulkError(AmdError):
    """The input or output cannot be used at all (not a file of the run failing)."""


def list_inputs(source: Path) -> Iterator[str]:
    """Audio files under a folder (sorted, recursive), or the ``path`` (or ``file``)
    column of a CSV, relative paths taken from the CSV's folder."""
    if source.is_dir():
        for root, dirs, files in os.walk(source):
            dirs.sort()
            for name in sorted(files):
                if Path(name).suffix.lower() in AUDIO_SUFFIXES:
                    yield str(Path(root) / name)
        return
    if not source.is_file():
        raise BulkError(f"{source}: no such folder or CSV file")
    with source.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        column = next((c for c in ("path", "file") if c in (reader.fieldnames or [])), None)
        if column is None:
            raise BulkError(f"{source}: a CSV needs a 'path' (or 'file') column")
        for row in reader:
            raw = (row.get(column) or "").strip()
            if raw:
                path = Path(raw)
                yield str(path if path.is_absolute() else source.parent / path)


class ResultsCsv:
    """The output CSV, opened for appending; knows which files it already holds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: set[str] = set()
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size:
            self._drop_partial_last_line()
            with path.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                if tuple(reader.fieldnames or ()) != COLUMNS:
                    raise BulkError(
                        f"{path} exists with other columns ({reader.fieldnames}); "
                        "choose another --out"
                    )
                self.done = {row["file"] for row in reader}
            self._handle: TextIO = path.open("a", newline="", encoding="utf-8")
            self._writer = csv.writer(self._handle)
        else:
            self._handle = path.open("w", newline="", encoding="utf-8")
            self._writer = csv.writer(self._handle)
            self._writer.writerow(COLUMNS)

    def _drop_partial_last_line(self) -> None:
        with self.path.open("rb+") as handle:
            data = handle.read()
            if data.endswith(b"\n"):
                return
            keep = data.rfind(b"\n") + 1
            handle.truncate(keep)
            log.warning("%s: dropped a half-written last line", self.path)

    def write(self, row: dict[str, object]) -> None:
        self._writer.writerow([_cell(row.get(column)) for column in COLUMNS])
        self._handle.flush()
        self.done.add(str(row["file"]))

    def close(self) -> None:
        self._handle.close()


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def decided_row(file: str, decision: Decision) -> dict[str, object]:
    summary = decision.summary()
    return {"file": file, "type": "final", **{k: summary.get(k) for k in COLUMNS[2:]}}


def error_row(file: str, error: str) -> dict[str, object]:
    return {"file": file, "type": "error", "transcript": error}


@dataclass
class Progress:
    """A progress line on stderr at most once a second: done, rate, ETA."""

    total: int | None
    out: TextIO = sys.stderr
    done: int = 0
    errors: int = 0

    def __post_init__(self) -> None:
        self._start = time.monotonic()
        self._shown = 0.0

    def step(self, error: bool) -> None:
        self.done += 1
        self.errors += error
        now = time.monotonic()
        if now - self._shown >= 1.0 or self.done == self.total:
            self._shown = now
            self.out.write("\r" + self.line(now))
            self.out.flush()

    def line(self, now: float) -> str:
        rate = self.done / max(now - self._start, 1e-9)
        text = f"{self.done} files, {rate:.1f}/s, {self.errors} errors"
        if self.total:
            eta = (self.total - self.done) / rate if rate else float("inf")
            text = (
                f"{self.done}/{self.total} files, {rate:.1f}/s, ETA {eta:.0f} s, "
                f"{self.errors} errors"
            )
        return text


async def _bounded(items: Iterable[str], limit: int, work) -> AsyncIterator[dict[str, object]]:  # type: ignore[no-untyped-def]
    """Run ``work(item)`` for each item, ``limit`` at a time; yield rows as they finish."""
    pending: set[asyncio.Task[dict[str, object]]] = set()
    iterator = iter(items)
    exhausted = False
    while True:
        while not exhausted and len(pending) < limit:
            item = next(iterator, None)
            if item is None:
                exhausted = True
                break
            pending.add(asyncio.ensure_future(work(item)))
        if not pending:
            return
        finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in finished:
            yield task.result()


async def evaluate(
    inputs: Iterable[str],
    out: ResultsCsv,
    decide,  # type: ignore[no-untyped-def]
    concurrency: int,
    progress: Progress,
) -> None:
    """Decide every input not yet in ``out``; write a row per file as it finishes."""
    todo = (f for f in inputs if f not in out.done)
    async for row in _bounded(todo, concurrency, decide):
        out.write(row)
        progress.step(row["type"] == "error")


def in_process_decider(settings, engine):  # type: ignore[no-untyped-def]
    """Decide a file with the service's call session and the shared batching engine."""
    from bridge.cli.detect import decide_file, files_at_once

    # Files in flight: what the engine takes at once, however many the caller starts.
    in_flight = asyncio.Semaphore(files_at_once(settings))

    async def decide(file: str) -> dict[str, object]:
        async with in_flight:
            try:
                decision = await decide_file(Path(file), settings, engine.analyze)
            except AmdError as exc:
                return error_row(file, str(exc))
        return decided_row(file, decision)

    return decide


def websocket_decider(url: str, chunk_ms: int, token: str | None):  # type: ignore[no-untyped-def]
    """Decide a file by streaming it to a running service's ``/ws/amd`` (the seed's way)."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import WebSocketException

    async def decide(file: str) -> dict[str, object]:
        try:
            fmt, data = await asyncio.to_thread(read_audio_file, Path(file))
        except AmdError as exc:
            return error_row(file, str(exc))
        query = urlencode({"rate": fmt.rate, "encoding": fmt.encoding.value})
        step = max(fmt.bytes_per_sample, fmt.rate * chunk_ms // 1000 * fmt.bytes_per_sample)
        headers = {"Authorization": f"Bearer {token}"} if token else None
        final: dict[str, object] | None = None
        try:
            async with connect(f"{url}?{query}", additional_headers=headers) as ws:
                sender = asyncio.ensure_future(_send(ws, data, step))
                async for message in ws:
                    reply = json.loads(message)
                    if reply.get("type") == "final":
                        final = reply
                    elif reply.get("type") == "error":
                        final = {"type": "error", "transcript": reply.get("error")}
                await sender
        except (OSError, WebSocketException) as exc:
            return error_row(file, f"{type(exc).__name__}: {exc}")
        if final is None:
            return error_row(file, "the service closed without a final answer")
        return {"file": file, **{k: final.get(k) for k in COLUMNS[1:]}}

    return decide


async def _send(ws, data: bytes, step: int) -> None:  # type: ignore[no-untyped-def]
    from websockets.exceptions import ConnectionClosed

    try:
        for offset in range(0, len(data), step):
            await ws.send(data[offset : offset + step])
        await ws.send(json.dumps({"type": "flush"}))
    except ConnectionClosed:
        pass  # the service answered at the maximum window before the file ended
