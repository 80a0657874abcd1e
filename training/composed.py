"""Composed openers: many distinct texts from the phrase grammar in
``training/data/grammar.toml``, on both sides of the held-out split.

The 217 hand-written templates of ``openers.csv`` are too few for a classifier to learn
what greetings and live answers say rather than which sentences they are. A frame (a
class of call: personal greeting, carrier message, receptionist, repeated "Hello?") is
a list of phrase pools; a text picks one entry from each. Every pool with four or more
entries is divided into training and held-out entries, and a held-out text is composed of
held-out entries only, so the evaluation meets wording the classifier has never seen.
"""

from __future__ import annotations

import random
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from training.texts import Template

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

TRAIN, TEST = "train", "test"
SPLIT_MIN_ENTRIES = 4  # smaller pools are shared by both sides
_SENTENCE_START = re.compile(r"(^|[.?!|]\s*)([a-z])")


@dataclass(frozen=True)
class Frame:
    text_class: str
    label: str
    parts: tuple[str, ...]  # pool names, "name?" said half the time, "|" a pause


@dataclass(frozen=True)
class Grammar:
    # each pool's entries in the batches its files list them in; each batch is split on its own
    batches: dict[str, tuple[tuple[str, ...], ...]]
    frames: tuple[Frame, ...]

    @property
    def pools(self) -> dict[str, tuple[str, ...]]:
        """Each pool's entries, its batches one after the other."""
        return {name: tuple(e for batch in b for e in batch) for name, b in self.batches.items()}

    @property
    def classes(self) -> list[str]:
        return sorted({f.text_class for f in self.frames})


class GrammarError(ValueError):
    """The grammar file names a pool it does not define, or a label that is not one."""


def load_grammar(path: Path | None = None, more: Sequence[Path] = ()) -> Grammar:
    """The grammar (the project's by default); each ``more`` file's pools are added to the
    pools of the same names as one more batch each (``training/data/more-phrases.toml``)."""
    source = path or Path(str(resources.files("training") / "data" / "grammar.toml"))
    data = tomllib.loads(source.read_text(encoding="utf-8"))
    batches = {name: _batches(name, entries) for name, entries in data.get("pools", {}).items()}
    for extra in more:
        added = tomllib.loads(extra.read_text(encoding="utf-8"))
        if set(added) - {"pools"}:
            raise GrammarError(f"{extra}: only [pools] may be added, not {sorted(set(added))}")
        for name, entries in added.get("pools", {}).items():
            if name not in batches:
                raise GrammarError(f"{extra}: the grammar has no pool {name!r}")
            batches[name] += _batches(name, entries)
    frames = tuple(Frame(f["class"], f["label"], tuple(f["parts"])) for f in data.get("frame", []))
    for frame in frames:
        if frame.label not in ("human", "machine"):
            raise GrammarError(f"frame of class {frame.text_class}: label {frame.label!r}")
        for part in frame.parts:
            if part != "|" and part.rstrip("?") not in batches:
                raise GrammarError(f"frame of class {frame.text_class}: no pool {part!r}")
    return Grammar(batches, frames)


def _batches(name: str, entries: list[object]) -> tuple[tuple[str, ...], ...]:
    """A pool is a list of phrases, or a list of lists of them (batches)."""
    if all(isinstance(e, str) for e in entries):
        return (tuple(str(e) for e in entries),)
    if all(isinstance(e, list) and all(isinstance(x, str) for x in e) for e in entries):
        return tuple(tuple(str(x) for x in batch) for batch in entries if isinstance(batch, list))
    raise GrammarError(f"pool {name!r}: a list of phrases or a list of lists of phrases")


def split_pools(grammar: Grammar, share: float, seed: int) -> dict[str, dict[str, list[str]]]:
    """Each side's entries of every pool: ``share`` of a pool's entries held out.

    A pool written as batches is split batch by batch (the first with the salt a
    one-batch pool has), so phrases added in a new batch leave the sides of the earlier
    ones as they were and figures measured before stay comparable."""
    from training.corpus import held_out

    sides: dict[str, dict[str, list[str]]] = {TRAIN: {}, TEST: {}}
    for name, entries in grammar.pools.items():
        if len(entries) < SPLIT_MIN_ENTRIES:
            sides[TRAIN][name] = sides[TEST][name] = list(entries)
            continue
        test: set[str] = set()
        for i, batch in enumerate(grammar.batches[name]):
            salt = f"pool:{name}" if i == 0 else f"pool:{name}:{i}"
            test |= held_out(batch, share, seed, salt) if len(batch) > 1 else set()
        sides[TEST][name] = [e for e in entries if e in test]
        sides[TRAIN][name] = [e for e in entries if e not in test]
    return sides


def sentence_case(pieces: Sequence[str]) -> str:
    """Pieces joined as one text: pauses as `` | ``, sentence starts capitalised."""
    text = " ".join(p for p in pieces if p)
    text = re.sub(r"\s*\|\s*", " | ", text).strip(" |")
    return _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), text)


def compose_one(frame: Frame, pools: dict[str, list[str]], rng: random.Random) -> str:
    pieces = []
    for part in frame.parts:
        if part == "|":
            pieces.append("|")
            continue
        name = part.rstrip("?")
        if part.endswith("?") and rng.random() < 0.5:
            continue
        pieces.append(rng.choice(pools[name]))
    return sentence_case(pieces)


def compose(
    grammar: Grammar, count: int, share: float, seed: int, exclude: Iterable[str] = ()
) -> list[tuple[Template, str]]:
    """About ``count`` distinct texts, an equal number per class, ``share`` of each class
    held out; each as a template (id ``<class>-<n>``) with its side. A class whose
    held-out pools allow fewer distinct texts gets fewer. Texts in ``exclude`` (the
    hand-written templates, which have sides of their own) are not made."""
    sides = split_pools(grammar, share, seed)
    rng = random.Random(f"{seed}:composed")
    per_class = max(1, round(count / max(len(grammar.classes), 1)))
    out: list[tuple[Template, str]] = []
    seen = {t.lower() for t in exclude}  # across classes and sides: no text on both sides
    for text_class in grammar.classes:
        frames = [f for f in grammar.frames if f.text_class == text_class]
        wanted = {TEST: max(1, round(per_class * share))}
        wanted[TRAIN] = max(1, per_class - wanted[TEST])
        n = 0
        for side in (TRAIN, TEST):
            made = 0
            for _ in range(50 * wanted[side]):
                if made == wanted[side]:
                    break
                frame = rng.choice(frames)
                text = compose_one(frame, sides[side], rng)
                if text.lower() in seen:
                    continue
                seen.add(text.lower())
                made += 1
                n += 1
                template = Template(f"{text_class}-{n:04d}", frame.label, text, text_class)
                out.append((template, side))
    return out
