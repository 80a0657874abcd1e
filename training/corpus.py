"""``amd-train corpus``: a labelled telephone corpus made here, with no network.

Every template is spoken by voices from one side of the split: templates and
voices are each divided into training and held-out sets (by label for the
templates, by family for the voices), and a held-out template is only ever
spoken by held-out voices. So a test item shares neither its words nor its
speaker with any training item. Asterisk's recorded prompts (one real voice,
machine only) are composed into the greetings Asterisk's own voicemail and
intercepts play, and go to the training side.

Every recording gets a channel condition (``training.conditions``: nothing, band
noise, other people talking behind the callee, or music; some with lost frames) and a
codec (G.711, after GSM or AMR-NB for some). Half the recordings are spoken faster or
slower, higher or lower (``VOICE_SHIFT``), so that no two share a speaker exactly.
Besides the hand-written templates, the corpus speaks composed texts
(``training.composed``): one recording each of many distinct texts, whose held-out
side is worded with phrases the training side never uses.
Out come ``manifest.csv`` (``path,label,text,template,text_class,voice,voice_shift,split``,
then the channel's ``codec,level_db,condition,background_db,lost_share`` and, for a recording
with something behind the callee, ``clean_path``: its clean twin) for the classifier and the
evaluation, and ``asr.csv`` (``path,transcription,...`` and the channel's columns):
short clips whose whole text is heard within the decision window, each under a condition
of its own, for Whisper fine-tuning and for measuring transcripts; a clip with
something behind the talker names its clean twin (``clean_path``).
"""

from __future__ import annotations

import csv
import logging
import math
import random
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import numpy as np
import soxr

from training.conditions import (
    BABBLE,
    MUSIC,
    NOISE,
    NONE,
    Condition,
    babble,
    lose_frames,
    mix_below,
    music_excerpt,
)
from training.synth import pad_to, render, write_wav
from training.telephone import PHONE_RATE, ChannelParams, beep, channel_peak, telephone
from training.texts import Template, fill
from training.voices import FloatAudio, Prompt, Voice, read_prompt

log = logging.getLogger(__name__)

TRAIN, TEST = "train", "test"
PHRASE_MAX_S = 2.0  # an ASR clip's text must be spoken within the decision window
LEAD_S = (0.1, 2.0)  # silence before the callee's first word, drawn per recording
# Half the recordings are played this much faster or slower (pitch, formants and tempo
# together, as a longer or shorter vocal tract and another speaking rate).
VOICE_SHIFT = (0.88, 1.14)
VOICE_SHIFT_SHARE = 0.5
# A voicemail greeting is followed by the beep that starts the recording (the rest stand
# for systems that record without one); carriers' messages and IVRs seldom beep.
BEEP_SHARE = 0.85
BEEP_SHARE_BY_CLASS = {"carrier-message": 0.2, "ivr": 0.2}
# People talking behind the callee say everyday talk (``training/data/chatter.txt``) and,
# this share of the time, what a person answering a phone says (a colleague at the next
# desk); never a machine's greeting, which would make the room sound like voicemail.
BACKGROUND_ANSWER_SHARE = 0.2
# Asterisk's voicemail and intercept messages, as app_voicemail and the carriers play them.
ASTERISK_GREETINGS = {
    "ast-unavail": ["vm-theperson", "{digits}", "vm-isunavail", "vm-intro"],
    "ast-busy": ["vm-theperson", "{digits}", "vm-isonphone", "vm-intro"],
    "ast-nobody": ["vm-nobodyavail", "vm-intro"],
    "ast-noservice": ["ss-noservice"],
    "ast-cannot": ["cannot-complete-as-dialed", "check-number-dial-again"],
    "ast-circuits": ["all-circuits-busy-now", "please-try-call-later"],
    "ast-notanswering": ["number-not-answering"],
    "ast-privacy": ["privacy-unident"],
    "ast-telemarketers": ["tt-allbusy"],
}

# What kind of call each of them is (the rest are carriers' intercepts).
ASTERISK_CLASSES = {
    "ast-unavail": "personal-greeting",
    "ast-busy": "personal-greeting",
    "ast-nobody": "personal-greeting",
    "ast-privacy": "call-screening",
}


@dataclass
class CorpusRows:
    recordings: list[dict[str, str]] = field(default_factory=list)
    phrases: list[dict[str, str]] = field(default_factory=list)


def held_out(names: Sequence[str], share: float, seed: int, salt: str) -> set[str]:
    """A reproducible ``share`` of ``names`` (at least one, never all)."""
    ordered = sorted(set(names))
    random.Random(f"{seed}:{salt}").shuffle(ordered)
    n = min(max(1, math.ceil(share * len(ordered))), len(ordered) - 1)
    return set(ordered[:n])


def split_templates(templates: Sequence[Template], share: float, seed: int) -> dict[str, str]:
    sides: dict[str, str] = {}
    for label in sorted({t.label for t in templates}):
        ids = [t.template_id for t in templates if t.label == label]
        test = held_out(ids, share, seed, f"templates:{label}")
        sides.update({i: TEST if i in test else TRAIN for i in ids})
    return sides


def split_voices(families: dict[str, Sequence[Voice]], share: float, seed: int) -> dict[str, str]:
    sides: dict[str, str] = {}
    for family, voices in sorted(families.items()):
        names = [v.name for v in voices]
        test = held_out(names, share, seed, f"voices:{family}") if len(names) > 1 else set()
        sides.update({n: TEST if n in test else TRAIN for n in names})
    return sides


def opening_phrases(text: str, max_words: int = 8) -> list[str]:
    """Openings of ``text`` that end at a pause mark, longest first (at most
    ``max_words``), then its first four words: the candidates a 2 s clip can hold."""
    head = text.split("|")[0]
    clauses = [c.strip() for c in re.split(r"(?<=[.,?!;])\s+", head) if c.strip()]
    found = []
    for n in range(len(clauses), 0, -1):
        phrase = " ".join(clauses[:n]).rstrip(".,;")
        if len(phrase.split()) <= max_words:
            found.append(phrase)
    words = head.split()
    if len(words) > 4:
        found.append(" ".join(words[:4]).rstrip(".,;"))
    return list(dict.fromkeys(found))


def split_music(
    tracks: dict[str, FloatAudio], share: float, seed: int
) -> dict[str, list[FloatAudio]]:
    """Music tracks by side: a held-out share of them (none when there is only one)
    plays behind held-out recordings only."""
    test = held_out(list(tracks), share, seed, "music") if len(tracks) > 1 else set()
    return {
        side: [a for name, a in sorted(tracks.items()) if (name in test) == (side == TEST)]
        for side in (TRAIN, TEST)
    }


def load_chatter(path: Path | None = None) -> list[str]:
    """Background talk, one sentence a line (``#`` starts a comment line): the project's
    ``training/data/chatter.txt`` or your own file."""
    source = path or Path(str(resources.files("training") / "data" / "chatter.txt"))
    lines = (line.strip() for line in source.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def split_chatter(lines: Sequence[str], share: float, seed: int) -> dict[str, list[str]]:
    """Background sentences by side: a held-out share is said behind held-out callees only."""
    test = held_out(list(lines), share, seed, "chatter") if len(lines) > 1 else set()
    return {side: [x for x in lines if (x in test) == (side == TEST)] for side in (TRAIN, TEST)}


class CorpusBuilder:
    def __init__(
        self,
        out_dir: Path,
        seed: int,
        music: dict[str, list[FloatAudio]] | None = None,
        chatter: dict[str, list[str]] | None = None,
    ) -> None:
        self.out = out_dir
        self.seed = seed
        self.music = music or {TRAIN: [], TEST: []}
        self.chatter = chatter or {TRAIN: [], TEST: []}
        self.rows = CorpusRows()
        for sub in ("audio", "phrases"):
            (out_dir / sub).mkdir(parents=True, exist_ok=True)

    def _save(
        self,
        sub: str,
        stem: str,
        audio: FloatAudio,
        rate: int,
        rng: random.Random,
        condition: Condition | None = None,
        clean: FloatAudio | None = None,
    ) -> tuple[str, dict[str, str]]:
        """Write ``audio`` through a telephone channel (and ``condition``'s noise and lost
        frames); its path, and the channel's manifest columns. ``clean``, the talker
        alone, is written beside it as ``<stem>_clean.wav`` through the same channel
        without noise or lost frames (column ``clean_path``): the recording's twin as it
        would sound in a quiet room, for training the encoder to hear the talker."""
        params = ChannelParams.sample(rng)
        if condition is not None:  # the condition says what noise the channel adds
            snr = condition.background_db if condition.background == NOISE else float("inf")
            params = replace(params, snr_db=snr)
        pcm = telephone(audio, rate, params, seed=rng.randrange(2**31))
        if condition is not None and condition.lost_share:
            pcm = lose_frames(pcm, PHONE_RATE, condition.lost_share, rng)
        path = Path(sub) / f"{stem}.wav"
        write_wav(self.out / path, pcm, PHONE_RATE)
        columns = {"codec": params.codec_name, "level_db": f"{params.gain_db:.1f}"}
        if clean is not None:  # no draw from rng: the recording is as it was without a twin
            twin = Path(sub) / f"{stem}_clean.wav"
            # at the level the talker has in the recording, whose peak may be the room's
            shift = 20 * math.log10(channel_peak(clean, rate) / channel_peak(audio, rate))
            quiet = replace(params, snr_db=float("inf"), gain_db=params.gain_db + shift)
            write_wav(self.out / twin, telephone(clean, rate, quiet, seed=0), PHONE_RATE)
            columns["clean_path"] = str(twin)
        if condition is not None:
            columns |= {
                "condition": condition.name,
                "background_db": f"{condition.background_db:.1f}",
                "lost_share": f"{condition.lost_share:.3f}",
            }
        return str(path), columns

    def speak_templates(
        self,
        templates: Sequence[Template],
        voices: Sequence[Voice],
        template_side: dict[str, str],
        voice_side: dict[str, str],
        variants: int,
        min_seconds: float,
    ) -> None:
        pools = {s: [v for v in voices if voice_side[v.name] == s] for s in (TRAIN, TEST)}
        # Background talk says sentences and answers of the talker's own side: its words
        # and voices are held out with the talker's.
        talk = {
            side: background_talk(
                self.chatter[side],
                [t for t in templates if template_side[t.template_id] == side],
            )
            for side in (TRAIN, TEST)
        }
        for n, template in enumerate(templates, start=1):
            side = template_side[template.template_id]
            for k in range(variants):
                rng = random.Random(f"{self.seed}:{template.template_id}:{k}")
                voice = rng.choice(pools[side])
                stem = f"{template.template_id}_{k}"
                beeps = BEEP_SHARE_BY_CLASS.get(template.text_class, BEEP_SHARE)
                text, audio = render(voice, template, rng, min_seconds, LEAD_S, beeps)
                shift = rng.uniform(*VOICE_SHIFT) if rng.random() < VOICE_SHIFT_SHARE else 1.0
                if shift != 1.0:
                    audio = pad_to(
                        soxr.resample(audio, voice.rate * shift, voice.rate).astype(np.float32),
                        int(min_seconds * voice.rate),
                    )
                condition = Condition.sample(rng, music=bool(self.music[side]))
                others = [v for v in pools[side] if v.name != voice.name] or pools[side]
                talker = audio
                audio = self._behind(audio, voice.rate, condition, others, talk[side], side, rng)
                # the twin: whole-recording windows teach the encoder to hear the callee
                twin = talker if condition.background != NONE else None
                path, channel = self._save("audio", stem, audio, voice.rate, rng, condition, twin)
                row = {"label": template.label, "text": text, "template": template.template_id}
                if template.text_class:
                    row["text_class"] = template.text_class
                row |= {"voice": voice.name, "voice_shift": f"{shift:.3f}", "split": side}
                self.rows.recordings.append({"path": path, **row, **channel})
                self._phrase(
                    stem,
                    voice,
                    opening_phrases(fill(template.text, rng)),
                    side,
                    template,
                    others,
                    talk[side],
                )
            if n % 25 == 0:
                log.info("spoke %d of %d templates", n, len(templates))

    def _behind(
        self,
        audio: FloatAudio,
        rate: int,
        condition: Condition,
        others: Sequence[Voice],
        talk: Callable[[random.Random], str],
        side: str,
        rng: random.Random,
    ) -> FloatAudio:
        """``audio`` with the condition's background talk or music mixed in below it
        (band noise and lost frames come later, with the channel)."""
        if condition.background == BABBLE:
            behind = babble(others, talk, rate, len(audio), condition.talkers, rng)
            return mix_below(audio, behind, condition.background_db)
        if condition.background == MUSIC:
            behind = music_excerpt(self.music[side], rate, len(audio), rng)
            return mix_below(audio, behind, condition.background_db)
        return audio

    def _phrase(
        self,
        stem: str,
        voice: Voice,
        candidates: list[str],
        side: str,
        template: Template,
        others: Sequence[Voice],
        talk: Callable[[random.Random], str],
    ) -> None:
        """The ASR clip of a recording: its opening words, under a condition drawn as
        the recordings' are, so that Whisper learns to hear the talker, not the room."""
        rng = random.Random(f"{self.seed}:{stem}:phrase")
        for text in candidates:  # the longest that fits the window with its lead-in
            speech = voice.speak(text, rng)
            if len(speech) <= (PHRASE_MAX_S - 0.1) * voice.rate:
                break
        else:
            return
        lead = np.zeros(int(voice.rate * rng.uniform(0.0, 0.1)), np.float32)
        audio = np.concatenate([lead, speech])
        condition = Condition.sample(rng, music=bool(self.music[side]))
        talker = audio
        audio = self._behind(audio, voice.rate, condition, others, talk, side, rng)
        twin = talker if condition.background != NONE else None
        path, channel = self._save("phrases", stem, audio, voice.rate, rng, condition, twin)
        self.rows.phrases.append(
            {
                "path": path,
                "transcription": text,
                "voice": voice.name,
                "template": template.template_id,
                "split": side,
                **channel,
            }
        )

    def asterisk(self, prompts: dict[str, Prompt], variants: int, min_seconds: float) -> None:
        """Asterisk's greetings (training side) and its short prompts as ASR clips."""
        for name, parts in ASTERISK_GREETINGS.items():
            if not all(p in prompts or p == "{digits}" for p in parts):
                log.warning("Asterisk greeting %s skipped: a prompt is missing", name)
                continue
            for k in range(variants):
                rng = random.Random(f"{self.seed}:{name}:{k}")
                audio, text = self._compose(prompts, parts, rng, min_seconds)
                condition = Condition.sample(rng, talk=False)
                quiet = audio if condition.background != NONE else None
                path, channel = self._save(
                    "audio", f"{name}_{k}", audio, PHONE_RATE, rng, condition, quiet
                )
                self.rows.recordings.append(
                    {
                        "path": path,
                        "label": "machine",
                        "text": text,
                        "template": name,
                        "text_class": ASTERISK_CLASSES.get(name, "carrier-message"),
                        "voice": "allison",
                        "split": TRAIN,
                        **channel,
                    }
                )
        test = held_out(list(prompts), 0.25, self.seed, "prompts")
        for name, prompt in sorted(prompts.items()):
            audio, rate = read_prompt(prompt)
            if rate != PHONE_RATE or len(audio) > PHRASE_MAX_S * rate or len(audio) < 0.3 * rate:
                continue
            rng = random.Random(f"{self.seed}:{name}:prompt")
            path, _ = self._save("phrases", f"prompt-{name.replace('/', '-')}", audio, rate, rng)
            self.rows.phrases.append(
                {
                    "path": path,
                    "transcription": prompt.text,
                    "voice": "allison",
                    "template": f"prompt-{name}",
                    "split": TEST if name in test else TRAIN,
                }
            )

    @staticmethod
    def _compose(
        prompts: dict[str, Prompt], parts: Iterable[str], rng: random.Random, min_seconds: float
    ) -> tuple[FloatAudio, str]:
        pieces: list[FloatAudio] = [np.zeros(int(PHONE_RATE * rng.uniform(0.1, 0.8)), np.float32)]
        words: list[str] = []
        for part in parts:
            names = (
                [f"digits/{d}" for d in str(rng.randint(100, 9999))]
                if part == "{digits}"
                else [part]
            )
            for name in names:
                prompt = prompts.get(name)
                if prompt is None:
                    continue
                audio, _ = read_prompt(prompt)
                pieces += [audio, np.zeros(int(PHONE_RATE * rng.uniform(0.05, 0.3)), np.float32)]
                words.append(prompt.text)
        if "vm-intro" in parts:  # app_voicemail's beep after its greeting
            pieces.append(beep(PHONE_RATE, 1000.0, 0.25))
        return pad_to(np.concatenate(pieces), int(min_seconds * PHONE_RATE)), " ".join(words)

    def write(self) -> tuple[Path, Path]:
        manifest, asr = self.out / "manifest.csv", self.out / "asr.csv"
        _write_csv(manifest, self.rows.recordings)
        _write_csv(asr, self.rows.phrases)
        return manifest, asr


def background_talk(
    chatter: Sequence[str], templates: Sequence[Template]
) -> Callable[[random.Random], str]:
    """What one person behind the callee says next: a chatter sentence, or now and then
    (``BACKGROUND_ANSWER_SHARE``) a live answer from ``templates``. Without chatter lines,
    live answers only; without human templates either, any template (as before there was
    chatter)."""
    answers = [t for t in templates if t.label == "human"]
    if not chatter and not answers:
        answers = list(templates)
    lines = list(chatter)

    def draw(rng: random.Random) -> str:
        if answers and (not lines or rng.random() < BACKGROUND_ANSWER_SHARE):
            return fill(rng.choice(answers).text, rng).replace("|", " ")
        return rng.choice(lines)

    return draw


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    fields: list[str] = []
    for row in rows:
        fields.extend(k for k in row if k not in fields)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fields)
        writer.writeheader()
        writer.writerows(rows)
