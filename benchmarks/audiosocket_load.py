"""Many concurrent AudioSocket calls against one service: lifecycle under load and
the CPU the media path costs.

    python benchmarks/audiosocket_load.py [--calls 1000] [--cut-share 0.05] [--engine stub]

The service runs in this process; the calls come from a second process (its own
interpreter, so the two do not share a GIL), as Asterisk would send them: the
call id, then 20 ms slin frames paced in real time (all calls share one 20 ms
ticker), with the starts spread over ``--ramp-s``. A share of the calls is cut
off mid-stream (the socket closed, as when the callee hangs up); the others run
until the bridge sends its hangup message, then close.

The audio is a piper greeting through a telephone channel, looped. ``--engine
stub`` answers every analysis MACHINE after 20 ms without computing, so the
figures are those of the media path (sockets, AudioSocket parsing, the call
session, the resampler, the tone detector, silence answered); ``stub-unsure``
answers 0.5, so every call streams to the maximum window and a connection's own
costs weigh less per second of audio; ``--engine real``
runs the bundled model (2 cores cannot decide 1,000 calls at once in real time:
expect NOTSURE/ERROR past the analysis deadline).

Printed: calls answered and decided, outcomes, the service's CPU seconds per
1,000 calls and per call-second of audio, its peak and final memory against the
baseline, and how late the client's frames ran against real time.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ctypes
import gc
import json
import multiprocessing
import random
import resource
import struct
import sys
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FRAME_BYTES = 320  # 20 ms of 8 kHz slin
TICK_S = 0.020
WARM_UP_CALLS = 10


def release_free_memory() -> None:
    """Hand freed heap back to the system (glibc keeps it otherwise), so RSS shows
    what is still in use rather than what the allocator kept."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


async def run_callers(target, args: tuple, peak_mb: float) -> tuple[Any, float]:  # type: ignore[no-untyped-def]
    """Run ``target(*args, out)`` in a second process (its own interpreter, so the
    callers do not share the service's GIL); its result, and the service's peak
    memory while it ran (at least ``peak_mb``)."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    callers = ctx.Process(target=target, args=(*args, out))
    callers.start()
    while callers.is_alive() and out.empty():
        peak_mb = max(peak_mb, rss_mb())
        await asyncio.sleep(0.2)
    result = await asyncio.to_thread(out.get)
    callers.join()
    return result, peak_mb


async def run_paced(
    calls: list[Coroutine[Any, Any, None]], on_tick: Callable[[float], None]
) -> list[float]:
    """Run ``calls`` while ``on_tick(now)`` is called every ``TICK_S`` (one ticker for all
    calls, as Asterisk's 20 ms frames come), until every call is over; how late each
    tick came, in seconds. ``now`` is ``time.monotonic()``."""
    pending = {asyncio.create_task(c) for c in calls}
    lateness: list[float] = []

    async def ticker() -> None:
        started = time.monotonic()
        tick = 0
        while pending:
            tick += 1
            due = started + tick * TICK_S
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            now = time.monotonic()
            lateness.append(now - due)
            on_tick(now)

    tick_task = asyncio.create_task(ticker())
    for task in pending.copy():
        await task
        pending.discard(task)
    await tick_task
    return lateness


# --- the calls (second process) ----------------------------------------------


def _client_main(port: int, calls: int, cut_share: float, ramp_s: float, audio: bytes, out) -> None:  # type: ignore[no-untyped-def]
    out.put(asyncio.run(_clients(port, calls, cut_share, ramp_s, audio)))


async def _clients(port: int, calls: int, cut_share: float, ramp_s: float, audio: bytes) -> dict:
    rng = random.Random(1)
    cut_every = round(1 / cut_share) if cut_share > 0 else 0
    plans = [
        {
            "start": rng.uniform(0, ramp_s),
            "cut_after": rng.uniform(0.3, 1.5) if cut_every and k % cut_every == 0 else None,
        }
        for k in range(calls)
    ]
    live: dict[int, dict] = {}
    results = {"hangup": 0, "cut": 0, "error": 0, "silence_frames": 0, "silence_bytes": 0}

    async def call(k: int, plan: dict) -> None:
        await asyncio.sleep(plan["start"])
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            results["error"] += 1
            return
        writer.write(struct.pack(">BH", 0x01, 16) + uuid.uuid4().bytes)
        state = {"writer": writer, "offset": rng.randrange(0, len(audio) // 2) * 2, "sent": 0.0}
        live[k] = state
        try:
            while True:
                kind, length = struct.unpack(">BH", await reader.readexactly(3))
                await reader.readexactly(length)
                if kind == 0x10:
                    results["silence_frames"] += 1
                    results["silence_bytes"] += length
                elif kind == 0x00:
                    results["hangup"] += 1
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            if plan["cut_after"] is not None:
                results["cut"] += 1
            else:
                results["error"] += 1
        finally:
            live.pop(k, None)
            writer.close()

    def send_frames(now: float) -> None:
        for k, state in list(live.items()):
            plan = plans[k]
            if plan["cut_after"] is not None and state["sent"] >= plan["cut_after"]:
                live.pop(k, None)
                state["writer"].close()  # the callee hangs up: the socket closes
                continue
            at = state["offset"] % (len(audio) - FRAME_BYTES)
            state["writer"].write(
                struct.pack(">BH", 0x10, FRAME_BYTES) + audio[at : at + FRAME_BYTES]
            )
            state["offset"] = at + FRAME_BYTES
            state["sent"] += TICK_S

    lateness = await run_paced([call(k, plan) for k, plan in enumerate(plans)], send_frames)
    late = np.array(lateness) * 1000
    results["ticker_late_ms_p50"] = round(float(np.percentile(late, 50)), 1)
    results["ticker_late_ms_p99"] = round(float(np.percentile(late, 99)), 1)
    return results


# --- the service (this process) ----------------------------------------------


class StubEngine:
    """An engine that answers after 20 ms and computes nothing: MACHINE at once, or
    (``unsure``) never confident, so every call runs to the maximum window."""

    def __init__(self, unsure: bool = False) -> None:
        self.proba_human = 0.5 if unsure else 0.05

    def analyze_batch(self, clips, heard_before=None):  # type: ignore[no-untyped-def]
        from bridge.session import AnalysisResult, TimingFeatures

        time.sleep(0.02)
        timing = TimingFeatures(0.3, 1.5, 0.2, 1, 2.0)
        return [AnalysisResult("you have reached", self.proba_human, timing, 20.0) for _ in clips]


def greeting_audio() -> bytes:
    from bridge.audio.chunk import Encoding
    from training.synth import PiperSpeaker
    from training.telephone import PHONE_RATE, ChannelParams, telephone

    speaker = PiperSpeaker()
    text = (
        "Hi, you have reached the Miller family. We can't take your call, please leave a message."
    )
    pcm = telephone(speaker.speak(text), speaker.rate, ChannelParams(30.0, -6.0, Encoding.ULAW), 0)
    assert PHONE_RATE == 8000
    return pcm.astype("<i2").tobytes()


async def run_load(calls: int, cut_share: float, ramp_s: float, engine: str) -> dict:
    from bridge.engine import build_detector
    from bridge.server import running_service
    from bridge.settings import Settings

    settings = Settings.load(
        environ={
            "AMD_HTTP_PORT": "0",
            "AMD_AUDIOSOCKET_PORT": "0",
            "AMD_MAX_CALLS": str(calls + 10),
            "AMD_ENGINE_QUEUE": str(calls + 10),
            "AMD_LOG_LEVEL": "WARNING",
        }
    )
    if engine == "real":
        detector = build_detector(settings)
    else:
        detector = StubEngine(unsure=engine == "stub-unsure")
    audio = greeting_audio()
    async with running_service(settings, detector) as service:  # type: ignore[arg-type]
        # A few calls first, not measured: the first calls pay one-time costs (lazy
        # imports, numpy's FFT plans, the resampler's tables) that a running service
        # paid long ago.
        await run_callers(
            _client_main, (service.audiosocket_port, WARM_UP_CALLS, 0.0, 0.5, audio), 0.0
        )
        await service.calls.wait_idle(10)
        release_free_memory()
        baseline = rss_mb()
        handler = service.audiosocket_handler
        warm_up = collections.Counter(handler.outcomes)
        machine_before = _machine_decision_audio(service)
        cpu0 = time.process_time()
        wall0 = time.perf_counter()
        result, peak = await run_callers(
            _client_main, (service.audiosocket_port, calls, cut_share, ramp_s, audio), baseline
        )
        await service.calls.wait_idle(10)
        wall = time.perf_counter() - wall0
        cpu = time.process_time() - cpu0
        release_free_memory()
        outcomes = collections.Counter(handler.outcomes)
        outcomes.subtract(warm_up)
        count, total = np.subtract(_machine_decision_audio(service), machine_before)
        decided_at = total / max(count, 1)
        statuses = {s: outcomes[s] for s in ("MACHINE", "HUMAN", "NOTSURE", "HANGUP")}
        decided = sum(statuses.values())
        # The audio the service took in, as the silence it answered with (it answers
        # 100 ms at a time: up to 0.1 s a call goes unanswered, so this errs high).
        audio_s = result["silence_bytes"] / (FRAME_BYTES / TICK_S)
        return {
            "calls": calls,
            "engine": engine,
            "client": result,
            "decided": decided,
            "mean_decision_audio_s": round(decided_at, 2),
            "statuses": statuses,
            "outcomes": {k: v for k, v in outcomes.items() if v},
            "active_after": handler.active,
            "open_calls_after": service.calls.active,
            "wall_s": round(wall, 1),
            "service_cpu_s": round(cpu, 1),
            "service_cpu_s_per_1000_calls": round(cpu / calls * 1000, 1),
            "service_cpu_ms_per_audio_s": round(cpu / audio_s * 1000, 2) if audio_s else None,
            "rss_mb": {
                "baseline": round(baseline, 1),
                "peak": round(peak, 1),
                "after": round(rss_mb(), 1),
            },
        }


def _machine_decision_audio(service) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """How many MACHINE decisions so far, and their callee audio seconds in all."""
    samples = {
        s.name: s.value
        for metric in service.metrics.audio.collect()
        for s in metric.samples
        if s.labels.get("status") == "MACHINE"
    }
    return (
        samples.get("amd_decision_audio_seconds_count", 0.0),
        samples.get("amd_decision_audio_seconds_sum", 0.0),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--cut-share", type=float, default=0.05)
    parser.add_argument("--ramp-s", type=float, default=2.0)
    parser.add_argument(
        "--engine",
        choices=("stub", "stub-unsure", "real"),
        default="stub",
        help="stub: MACHINE at 2 s; stub-unsure: every call runs to the maximum window",
    )
    args = parser.parse_args()
    from bridge.cli.main import run_loop  # uvloop, as `amd-bridge serve` runs

    reports: list[dict] = []

    async def measure() -> None:
        report = await run_load(args.calls, args.cut_share, args.ramp_s, args.engine)
        report["event_loop"] = type(asyncio.get_running_loop()).__module__.split(".")[0]
        reports.append(report)

    run_loop(measure())
    report = reports[0]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
