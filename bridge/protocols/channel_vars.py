"""The channel variables a decision sets on a PBX channel, made safe to send.

Both PBX control protocols (Asterisk AMI, FreeSWITCH ESL) are line-based text:
a value holding a newline would end the header and let the rest be read as
another one. Every value therefore goes through ``sanitize`` first, which also
keeps a transcript short enough for a dialplan to print.
"""

from __future__ import annotations

import unicodedata

from bridge.session.decision import Decision

MAX_VALUE_CHARS = 200


def sanitize(value: str, limit: int = MAX_VALUE_CHARS) -> str:
    """One line of printable text: control and separator characters become spaces,
    runs of spaces collapse, and the result is cut to ``limit`` characters."""
    cleaned = "".join(
        " " if unicodedata.category(ch)[0] in "CZ" else ch for ch in value
    )  # C*: controls, format, surrogates, unassigned; Z*: separators incl. U+2028
    return " ".join(cleaned.split())[:limit].rstrip()


def channel_variables(decision: Decision) -> dict[str, str]:
    """``AMDCAUSE``, ``AMDCONFIDENCE`` (0-1, two decimals, empty when the engine gave
    none), ``AMDTRANSCRIPT`` and ``AMDSTATUS``, in the order they are to be set.

    ``AMDSTATUS`` comes last: each variable is set by a command of its own, so a
    campaign that polls for ``AMDSTATUS`` finds the others already set once it is.
    """
    confidence = decision.confidence
    return {
        "AMDCAUSE": decision.amd_cause,
        "AMDCONFIDENCE": "" if confidence is None else f"{confidence:.2f}",
        "AMDTRANSCRIPT": sanitize(decision.transcript),
        "AMDSTATUS": decision.status.value,
    }
