"""Asterisk's own AMD() and amd-bridge on the same calls, in the same real Asterisk.

    sudo .venv/bin/python benchmarks/asterisk_side_by_side.py [--concurrency 4]

Builds (or reuses) the test suite's Debian sid root with Asterisk 22, starts it
and the bridge, and places every call twice through ``Local/`` channels whose
callee half plays the recording: once into a context running ``AMD()`` with
Debian's stock ``amd.conf``, once into the project's ``Gosub(amd-bridge,s,1)``.
Prints, per recording and in total, both verdicts and both times to decision
(dialplan clock, from entering ``AMD()``/the subroutine to leaving it).

Recordings: texts written for this benchmark (not among the training templates),
spoken by piper through a mu-law telephone channel at 30 dB SNR, a person's
opener followed by silence, and Asterisk's own recorded voicemail prompts
(the greeting ``VoiceMail()`` plays). With ``--held-out N``, also N texts of each
answer from the held-out side of ``amd-train corpus --seed 1`` (composed of phrases
the classifier never saw, every text class), spoken by its held-out voices through
the same channel, pauses and a machine's beep as the corpus makes them.
Needs root, like the test suite.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.audio import Encoding
from bridge.engine import build_detector
from bridge.settings import Settings
from tests.asterisk.ami_client import AmiClient, first
from tests.asterisk.bridge_thread import BridgeThread
from tests.asterisk.pbx import AsteriskPbx, bridge_env
from tests.asterisk.root import ensure_root, why_not_supported
from training.synth import PiperSpeaker
from training.telephone import PHONE_RATE, ChannelParams, telephone

MACHINE_TEXTS = [
    "Hello, you've reached the Hendersons. We're not home right now, "
    "so please leave a message after the beep.",
    "Thank you for calling Brightside Dental. Our office is currently closed. "
    "Our hours are Monday through Friday, eight to five.",
    "Hi, this is Marcus. Sorry I missed your call. Text me or leave a voicemail "
    "and I'll call you back.",
    "The wireless customer you are calling is not available. Please try your call again later.",
    "You have reached the voice mailbox of Dana Whitfield. Please leave your name, "
    "number, and a brief message.",
    "Hey there, it's Jo. I'm probably out on the trail. Leave a message.",
    "Your call has been forwarded to an automated voice messaging system. "
    "The person you are trying to reach is not available.",
    "Welcome to Coastal Insurance. If you know your party's extension, "
    "you may dial it at any time.",
    "Hi, you've got Priya and Sam. We can't get to the phone, leave us a message!",
    "This mailbox is full and cannot accept any messages at this time. Goodbye.",
]
HUMAN_TEXTS = [
    "Hello?",
    "Hi, this is Karen.",
    "Yeah, hello?",
    "Good afternoon, Mike speaking.",
    "Hello, who's calling?",
    "Hey.",
    "Hello? Hello?",
    "This is Dave.",
    "Yes?",
    "Hi there, who is this?",
]
PROMPTS = "usr/share/asterisk/sounds/en_US_f_Allison"
DEFAULTS_COMPOSED = 2000  # amd-train corpus --composed in scripts/train_defaults.sh
# What VoiceMail() plays for an extension without a recorded greeting.
VOICEMAIL_GREETINGS = {
    "ast-vm-intro": ["vm-intro"],
    "ast-vm-unavail": ["vm-theperson", "digits/2", "digits/0", "digits/1", "vm-isunavail"]
    + ["vm-intro"],
}


@dataclass(frozen=True)
class Recording:
    name: str
    truth: str  # HUMAN or MACHINE
    path: Path


def write_wav(path: Path, pcm: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(PHONE_RATE)
        w.writeframes(pcm.astype("<i2").tobytes())


def make_recordings(root: Path, folder: Path) -> list[Recording]:
    speaker = PiperSpeaker()
    rng = random.Random(7)
    out: list[Recording] = []
    for truth, texts in (("MACHINE", MACHINE_TEXTS), ("HUMAN", HUMAN_TEXTS)):
        for i, text in enumerate(texts):
            lead = np.zeros(int(speaker.rate * rng.uniform(0.2, 0.8)), np.float32)
            audio = np.concatenate([lead, speaker.speak(text, rng)])
            pcm = telephone(audio, speaker.rate, ChannelParams(30.0, -6.0, Encoding.ULAW), i)
            path = folder / f"{truth.lower()}{i:02d}.wav"
            write_wav(path, pcm)
            out.append(Recording(f"{truth.lower()}{i:02d}: {text[:40]}", truth, path))
    for name, prompts in VOICEMAIL_GREETINGS.items():
        pieces = []
        for prompt in prompts:
            with wave.open(str(root / PROMPTS / f"{prompt}.wav")) as w:
                pieces.append(np.frombuffer(w.readframes(w.getnframes()), "<i2"))
        path = folder / f"{name}.wav"
        write_wav(path, np.concatenate(pieces))
        out.append(Recording(f"{name}: Asterisk's voicemail prompts", "MACHINE", path))
    return out


def held_out_recordings(folder: Path, per_label: int, seed: int = 1) -> list[Recording]:
    """Texts and voices of the corpus's held-out side (``amd-train corpus --seed 1``)."""
    from training.composed import TEST, compose, load_grammar
    from training.corpus import split_voices
    from training.synth import render
    from training.texts import load_templates
    from training.voices import espeak_voices, piper_voices

    written = [t.text for t in load_templates()]
    drawn = compose(load_grammar(), DEFAULTS_COMPOSED, 0.25, seed, written)
    composed = [t for t, side in drawn if side == TEST]
    families = {"piper": piper_voices(PiperSpeaker(seed=seed)), "espeak": espeak_voices()}
    sides = split_voices(families, 0.25, seed)
    voices = [v for f in families.values() for v in f if sides[v.name] == TEST]
    rng = random.Random(f"{seed}:side-by-side")
    out: list[Recording] = []
    for label in ("machine", "human"):
        for template in rng.sample([t for t in composed if t.label == label], per_label):
            voice = rng.choice(voices)
            text, audio = render(voice, template, rng, 0.0)
            params = ChannelParams(30.0, -6.0, Encoding.ULAW)
            pcm = telephone(audio, voice.rate, params, rng.randrange(2**31))
            path = folder / f"{template.template_id}.wav"
            write_wav(path, pcm)
            name = f"{template.template_id} ({voice.name}): {' '.join(text.split())[:30]}"
            out.append(Recording(name, label.upper(), path))
    return out


def place(ami: AmiClient, sound: str, context: str) -> tuple[str, str, float]:
    action_id = ami.send(
        "Originate",
        Channel=f"Local/play-{sound}@amd-test-callee",
        Context=context,
        Exten="s",
        Priority="1",
        Async="true",
    )
    answered = ami.wait(
        lambda p: first(p, "Event") == "OriginateResponse" and first(p, "ActionID") == action_id,
        30,
    )
    channel = first(answered, "Channel")
    result = ami.wait(
        lambda p: first(p, "UserEvent") == "AMDTestResult" and first(p, "Channel") == channel, 60
    )
    seconds = float(first(result, "Ended")) - float(first(result, "Started"))
    return first(result, "Status"), first(result, "Cause"), seconds


def summarise(label: str, rows: list[tuple[str, str, float]], truths: list[str]) -> str:
    correct = sum(status == truth for (status, _, _), truth in zip(rows, truths, strict=True))
    decided = [
        (s, t) for (s, _, _), t in zip(rows, truths, strict=True) if s in ("HUMAN", "MACHINE")
    ]
    notsure = len(rows) - len(decided)
    right_when_decided = sum(s == t for s, t in decided)
    times = [secs for _, _, secs in rows]
    return (
        f"{label:<12} correct {correct}/{len(rows)} ({100 * correct / len(rows):.0f}%), "
        f"NOTSURE {notsure}, correct when decided {right_when_decided}/{len(decided) or 1}, "
        f"time to decision median {statistics.median(times):.2f} s, "
        f"mean {statistics.mean(times):.2f} s, max {max(times):.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, default=4, help="calls in flight at once")
    parser.add_argument(
        "--held-out", type=int, default=0, help="add N held-out corpus texts of each answer"
    )
    args = parser.parse_args()
    reason = why_not_supported()
    if reason:
        sys.exit(f"cannot run: {reason}")
    root = ensure_root()
    detector = build_detector(Settings.load(environ={}))
    with tempfile.TemporaryDirectory() as tmp:
        recordings = make_recordings(root, Path(tmp))
        if args.held_out:
            recordings += held_out_recordings(Path(tmp), args.held_out)
        pbx = AsteriskPbx(root, name="amd-bench")
        pbx.write_configs()
        for i, rec in enumerate(recordings):
            pbx.add_sound(f"r{i}", rec.path)
        ami = pbx.start()
        version = ami.command("core show version").strip()
        try:
            settings = Settings.load(environ=bridge_env(pbx.ami_port))
            with BridgeThread(settings, detector) as bridge:
                ami.command(f"dialplan set global AMD_BRIDGE_ADDR {bridge.audiosocket_addr}")
                with ThreadPoolExecutor(args.concurrency) as pool:
                    amd_rows = list(
                        pool.map(
                            lambda i: place(ami, f"r{i}", "amd-test-asterisk-amd"),
                            range(len(recordings)),
                        )
                    )
                    ours = list(
                        pool.map(
                            lambda i: place(ami, f"r{i}", "amd-test-caller"),
                            range(len(recordings)),
                        )
                    )
        finally:
            ami.close()
            pbx.stop()
    print(f"{'recording':<60} {'truth':<8} {'AMD()':<34} amd-bridge")
    for rec, (s1, c1, t1), (s2, c2, t2) in zip(recordings, amd_rows, ours, strict=True):
        print(
            f"{rec.name:<60} {rec.truth:<8} {s1:<8} {t1:5.2f} s {c1:<18} {s2:<8} {t2:5.2f} s {c2}"
        )
    truths = [r.truth for r in recordings]
    print()
    print(summarise("AMD()", amd_rows, truths))
    print(summarise("amd-bridge", ours, truths))
    if args.held_out:
        own = len(recordings) - 2 * args.held_out
        print("\nthe held-out corpus texts alone:")
        print(summarise("AMD()", amd_rows[own:], truths[own:]))
        print(summarise("amd-bridge", ours[own:], truths[own:]))
    print(f"\n{len(recordings)} calls each, {args.concurrency} at a time; {version}")


if __name__ == "__main__":
    main()
