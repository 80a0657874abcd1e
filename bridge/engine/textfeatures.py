"""Text features shared by training and the runtime: one implementation, no drift.

TF-IDF over word 1-2-grams and character 2-5-grams inside word boundaries
(the ``char_wb`` analyser of scikit-learn, which the seed used), with sublinear
term frequency and L2 normalisation per block. The runtime needs no
scikit-learn: vocabulary and IDF weights travel as plain arrays.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_WORD = re.compile(r"[a-z0-9']+")
_SPACES = re.compile(r"\s+")
WORD_PREFIX = "w:"
CHAR_PREFIX = "c:"


def normalize_text(text: str) -> str:
    """Lower-case, strip accents and punctuation, keep apostrophes inside words."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.lower().replace("\u2019", "'")
    words = [w.strip("'") for w in _WORD.findall(text)]
    return " ".join(w for w in words if w)


@dataclass(frozen=True)
class AnalyzerConfig:
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (2, 5)


def word_terms(text: str, cfg: AnalyzerConfig) -> list[str]:
    words = text.split()
    lo, hi = cfg.word_ngrams
    terms: list[str] = []
    for n in range(lo, hi + 1):
        terms.extend(WORD_PREFIX + " ".join(words[i : i + n]) for i in range(len(words) - n + 1))
    return terms


def char_terms(text: str, cfg: AnalyzerConfig) -> list[str]:
    lo, hi = cfg.char_ngrams
    terms: list[str] = []
    for word in _SPACES.split(text):
        if not word:
            continue
        padded = f" {word} "
        for n in range(lo, hi + 1):
            if n > len(padded):
                break
            terms.extend(CHAR_PREFIX + padded[i : i + n] for i in range(len(padded) - n + 1))
    return terms


def analyze(text: str, cfg: AnalyzerConfig) -> tuple[Counter[str], Counter[str]]:
    """Word-term and char-term counts of a raw transcript."""
    norm = normalize_text(text)
    return Counter(word_terms(norm, cfg)), Counter(char_terms(norm, cfg))


def fit_vocabulary(
    texts: Iterable[str], cfg: AnalyzerConfig, min_df: int = 1
) -> tuple[list[str], list[float]]:
    """Sorted vocabulary and smoothed IDF (``ln((1+n)/(1+df)) + 1``) from a corpus."""
    df: Counter[str] = Counter()
    n_docs = 0
    for text in texts:
        n_docs += 1
        words, chars = analyze(text, cfg)
        df.update(set(words) | set(chars))
    vocab = sorted(term for term, count in df.items() if count >= min_df)
    idf = [math.log((1 + n_docs) / (1 + df[t])) + 1.0 for t in vocab]
    return vocab, idf


class TfidfFeaturizer:
    """Maps a transcript to sparse TF-IDF features over a fixed vocabulary."""

    def __init__(self, vocab: Sequence[str], idf: Sequence[float], cfg: AnalyzerConfig) -> None:
        if len(vocab) != len(idf):
            raise ValueError("vocabulary and idf lengths differ")
        self.cfg = cfg
        self.index = {term: i for i, term in enumerate(vocab)}
        self.idf = list(idf)
        self.size = len(vocab)

    def transform(self, text: str) -> dict[int, float]:
        """Sparse vector ``{feature index: weight}``; each block (words, chars) has unit norm."""
        out: dict[int, float] = {}
        for counts in analyze(text, self.cfg):
            block: dict[int, float] = {}
            for term, count in counts.items():
                i = self.index.get(term)
                if i is not None:
                    block[i] = (1.0 + math.log(count)) * self.idf[i]
            norm = math.sqrt(sum(v * v for v in block.values()))
            if norm > 0:
                out.update((i, v / norm) for i, v in block.items())
        return out
