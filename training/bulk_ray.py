"""``amd-train bulk-eval --ray``: the same evaluation spread over a Ray cluster.

Past one machine, the files go through Ray Data: each actor loads the models
once (as the service does) and decides a batch of files with the service's own
call session and batching engine; the driver streams the rows back and appends
them to the results CSV, so resuming and the progress line work as in process.
``--ray-address`` joins a running cluster; without it Ray starts a local one,
which is how the tests run it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterable
from typing import Any

from training.bulk import COLUMNS, Progress, ResultsCsv


class FileDecider:
    """A Ray Data actor: the detector loaded once, whole batches of files decided."""

    def __init__(self, environ: dict[str, str]) -> None:
        from bridge.engine import build_detector
        from bridge.settings import Settings

        self.settings = Settings.load(environ=environ)
        self.detector = build_detector(self.settings)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        rows = asyncio.run(self._decide([str(f) for f in batch["file"]]))
        return {column: [_text(r.get(column)) for r in rows] for column in COLUMNS}

    async def _decide(self, files: list[str]) -> list[dict[str, object]]:
        from bridge.engine import build_batching_engine
        from training.bulk import in_process_decider

        engine = build_batching_engine(self.settings, self.detector)
        try:
            decide = in_process_decider(self.settings, engine)
            return list(await asyncio.gather(*(decide(f) for f in files)))
        finally:
            await engine.aclose()


def _text(value: object) -> str:
    return "" if value is None else str(value)


def evaluate_on_ray(
    inputs: Iterable[str],
    out: ResultsCsv,
    progress: Progress,
    actors: int,
    batch_size: int = 32,
    address: str | None = None,
) -> None:
    """Decide every input not yet in ``out`` on Ray; rows are written as they stream back."""
    # Our own progress bar and log lines say how it goes: keep Ray's quiet unless asked.
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", "ERROR")
    import ray

    todo = [{"file": f} for f in inputs if f not in out.done]
    if not todo:
        return
    environ = {k: v for k, v in os.environ.items() if k.startswith("AMD_")}
    ray.init(
        address=address,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.ERROR,
    )
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    try:
        dataset = ray.data.from_items(todo).map_batches(
            FileDecider,
            fn_constructor_kwargs={"environ": environ},
            batch_size=batch_size,
            compute=ray.data.ActorPoolStrategy(size=actors),
            batch_format="numpy",
        )
        for row in dataset.iter_rows():
            out.write(dict(row))
            progress.step(row["type"] == "error")
    finally:
        ray.shutdown()
