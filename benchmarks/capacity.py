"""How many calls per second one box decides on time: Poisson arrivals of real
speech over AudioSocket, the real engine, the shipped decision policy.

    python benchmarks/capacity.py [--rates 4,8,12,16] [--seconds 20] [--code DIR]

For each arrival rate, calls arrive as a Poisson process for ``--seconds``; each
streams a telephone recording (piper greetings and human openers, then silence) in
20 ms frames paced in real time from a second process, as Asterisk's AudioSocket()
would, until the bridge ends it. The service (this process) runs with its default
settings and the bundled models.

A decision's **lateness** is the time from the moment its audio allowed it (the
frame that completed the audio it was decided on was sent) to the moment the bridge's
hangup message reached the caller; an idle box shows the engine's own time there.
Printed per rate: calls, outcomes, lateness p50/p99/max, service CPU per call,
peak memory; then the highest rate at which p99 lateness stayed under 250 ms.

``--code DIR`` imports ``bridge`` from another checkout (e.g. a worktree of an older
commit), so that two versions are measured by the same script on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import struct
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from audiosocket_load import (  # beside this script
    FRAME_BYTES,
    TICK_S,
    rss_mb,
    run_callers,
    run_paced,
)

HERE = Path(__file__).resolve().parent
# Every recording is padded to this, past the default maximum window (7 s), so that a call
# still unsure at its last ask has its audio to the end (at 6 s the line went quiet).
CALL_AUDIO_S = 8.0
LATE_LIMIT_MS = 250.0
TEXTS = {
    "machine": [
        "Hi, you've reached the Miller family. We can't take your call, please leave a message.",
        "You have reached the voicemail of Anna Lopez. Please leave your name and number.",
        "Thank you for calling Parkside Dental. Our office is now closed.",
        "The person you are calling is not available. Record your message after the tone.",
    ],
    "human": ["Hello?", "Yeah, hello, who's this?", "Hi, this is Mark.", "Good morning."],
}


def recordings() -> list[tuple[str, bytes]]:
    """(label, 8 kHz slin bytes) of each text through a telephone channel, padded."""
    from bridge.audio.chunk import Encoding
    from training.synth import PiperSpeaker
    from training.telephone import ChannelParams, telephone

    speaker = PiperSpeaker()
    made = []
    for label, texts in TEXTS.items():
        for k, text in enumerate(texts):
            pcm = telephone(
                speaker.speak(text), speaker.rate, ChannelParams(30.0, -6.0, Encoding.ULAW), k
            )
            lead = np.zeros(int(8000 * (0.2 + 0.15 * k)), np.int16)
            audio = np.concatenate([lead, pcm.astype(np.int16)])[: int(8000 * CALL_AUDIO_S)]
            audio = np.pad(audio, (0, int(8000 * CALL_AUDIO_S) - len(audio)))
            made.append((label, audio.astype("<i2").tobytes()))
    return made


# --- the callers (second process) -------------------------------------------------


def _callers_main(port: int, rate: float, seconds: float, audio: list, seed: int, out) -> None:  # type: ignore[no-untyped-def]
    out.put(asyncio.run(_callers(port, rate, seconds, audio, seed)))


async def _callers(
    port: int, rate: float, seconds: float, audio: list[tuple[str, bytes]], seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    starts: list[float] = []
    t = rng.expovariate(rate)
    while t < seconds:
        starts.append(t)
        t += rng.expovariate(rate)
    live: dict[str, dict[str, Any]] = {}
    calls: dict[str, dict[str, Any]] = {}

    async def call(at: float, k: int) -> None:
        await asyncio.sleep(at)
        call_id = uuid.uuid4()
        label, pcm = audio[k % len(audio)]
        record: dict[str, Any] = {"label": label, "sent": [], "ended": None, "error": None}
        calls[str(call_id)] = record
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError as exc:
            record["error"] = str(exc)
            return
        writer.write(struct.pack(">BH", 0x01, 16) + call_id.bytes)
        live[str(call_id)] = {"writer": writer, "pcm": pcm, "record": record}
        try:
            while True:
                kind, length = struct.unpack(">BH", await reader.readexactly(3))
                await reader.readexactly(length)
                if kind == 0x00:
                    record["ended"] = time.monotonic()
                    return
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            record["error"] = repr(exc)
        finally:
            live.pop(str(call_id), None)
            writer.close()

    def send_frames(now: float) -> None:
        for state in list(live.values()):
            sent = state["record"]["sent"]
            at = len(sent) * FRAME_BYTES
            if at + FRAME_BYTES > len(state["pcm"]):
                continue  # the recording is over: the line stays quiet
            state["writer"].write(
                struct.pack(">BH", 0x10, FRAME_BYTES) + state["pcm"][at : at + FRAME_BYTES]
            )
            sent.append(now)

    tick_late = await run_paced([call(at, k) for k, at in enumerate(starts)], send_frames)
    late = np.array(tick_late or [0.0]) * 1000
    return {"calls": calls, "ticker_late_ms_p99": round(float(np.percentile(late, 99)), 1)}


# --- the service (this process) ---------------------------------------------------


async def measure_rate(
    service: Any, rate: float, seconds: float, audio: list, seed: int
) -> dict[str, Any]:
    decided: dict[str, tuple[float, str]] = {}
    handler = service.audiosocket_handler
    original_publish = handler.publish

    async def record(call_id: str, result: Any) -> object:
        if hasattr(result, "decision_audio_s"):
            decided[call_id] = (result.decision_audio_s, result.status.value)
        return await original_publish(call_id, result)

    handler.publish = record
    cpu0 = time.process_time()
    result, peak = await run_callers(
        _callers_main, (service.audiosocket_port, rate, seconds, audio, seed), rss_mb()
    )
    await service.calls.wait_idle(10)
    cpu = time.process_time() - cpu0
    handler.publish = original_publish
    late_ms, statuses, right, errors = [], {}, 0, 0
    for call_id, record in result["calls"].items():
        if (
            record["error"]
            or call_id not in decided
            or record["ended"] is None
            or not record["sent"]
        ):
            errors += 1
            continue
        audio_s, status = decided[call_id]
        statuses[status] = statuses.get(status, 0) + 1
        right += status.lower() == record["label"]
        frame = min(max(round(audio_s / TICK_S) - 1, 0), len(record["sent"]) - 1)
        late_ms.append((record["ended"] - record["sent"][frame]) * 1000)
    n = len(result["calls"])
    lat = np.array(late_ms or [float("nan")])
    return {
        "rate_per_s": rate,
        "calls": n,
        "decided": len(late_ms),
        "lost": errors,
        "statuses": statuses,
        "right": right,
        "lateness_ms": {
            "p50": round(float(np.percentile(lat, 50)), 1),
            "p99": round(float(np.percentile(lat, 99)), 1),
            "max": round(float(np.max(lat)), 1),
        },
        "service_cpu_ms_per_call": round(cpu / max(n, 1) * 1000, 1),
        "service_cpu_share": round(cpu / (seconds + CALL_AUDIO_S), 2),
        "rss_peak_mb": round(peak, 1),
        "caller_ticker_late_ms_p99": result["ticker_late_ms_p99"],
    }


async def run(
    rates: list[float], seconds: float, seed: int, extra: dict[str, str]
) -> dict[str, Any]:
    from bridge.engine import build_detector
    from bridge.server import running_service
    from bridge.settings import Settings

    settings = Settings.load(
        environ={
            "AMD_HTTP_PORT": "0",
            "AMD_AUDIOSOCKET_PORT": "0",
            "AMD_LOG_LEVEL": "WARNING",
            **extra,
        }
    )
    detector = build_detector(settings)
    audio = recordings()
    rows = []
    async with running_service(settings, detector) as service:
        for rate in rates:
            row = await measure_rate(service, rate, seconds, audio, seed)
            print(json.dumps(row), flush=True)
            rows.append(row)
    ok = [
        r["rate_per_s"] for r in rows if r["lost"] == 0 and r["lateness_ms"]["p99"] < LATE_LIMIT_MS
    ]
    return {"rows": rows, "highest_rate_p99_under_250ms": max(ok) if ok else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="4,8,12,16", help="calls per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0, help="arrivals last this long")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--code", type=Path, help="import bridge from this checkout instead")
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="AMD_NAME=VALUE",
        help="a service setting other than its default (repeatable)",
    )
    args = parser.parse_args()
    sys.path.insert(0, str((args.code or HERE.parent).resolve()))
    import bridge
    from bridge.cli.main import run_loop

    rates = [float(r) for r in args.rates.split(",")]
    extra = dict(item.split("=", 1) for item in args.setting)
    reports: list[dict[str, Any]] = []

    async def go() -> None:
        reports.append(await run(rates, args.seconds, args.seed, extra))

    run_loop(go())
    report = reports[0]
    report["code"] = str(Path(bridge.__file__).parent.parent)
    report["settings"] = extra
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}))


if __name__ == "__main__":
    main()
