"""FreeSWITCH's argument splitting, ported line by line from ``switch_utils.c``
(``separate_string_blank_delim``, ``separate_string_char_delim``,
``cleanup_separated_string``, ``unescape_char``).

API commands such as ``uuid_setvar`` split their argument with
``switch_separate_string(arg, ' ', argv, n)``; the test peer uses this port so
that what the bridge sends is read exactly as FreeSWITCH would read it.
"""

from __future__ import annotations

ESCAPE_META = "\\"


def unescape_char(escaped: str) -> str:
    return {"n": "\n", "r": "\r", "t": "\t", "s": " "}.get(escaped, escaped)


def cleanup_separated_string(text: str, delim: str) -> str:
    """Remove quotes, turn escapes into characters, drop spaces at either end."""
    ptr = 0
    while ptr < len(text) and text[ptr] == " ":
        ptr += 1
    dest: list[str] = []
    end: int | None = None
    inside_quotes = False
    while ptr < len(text):
        ch = text[ptr]
        esc = False
        if ch == ESCAPE_META and ptr + 1 < len(text):
            e = text[ptr + 1]
            if (
                e in ("'", '"')
                or (delim and e == delim)
                or e == ESCAPE_META
                or (unescape_char(e) != e)
            ):
                ptr += 1
                dest.append(unescape_char(e) if e not in ("'", '"', ESCAPE_META) else e)
                end = len(dest)
                esc = True
        if not esc:
            if ch == "'" and (inside_quotes or "'" in text[ptr + 1 :]):
                inside_quotes = not inside_quotes
                if inside_quotes:
                    end = len(dest)
            else:
                dest.append(ch)
                if ch != " " or inside_quotes:
                    end = len(dest)
        ptr += 1
    return "".join(dest if end is None else dest[:end])


def separate_string(buf: str, arraylen: int) -> list[str]:
    """``switch_separate_string(buf, ' ', argv, arraylen)``: the last field keeps the
    rest of the line, and every field is cleaned up afterwards."""
    starts: list[int] = []
    cuts: list[int] = []
    state = "START"
    inside_quotes = False
    ptr = 0
    while ptr < len(buf) and len(starts) < arraylen:
        ch = buf[ptr]
        if state == "START":
            starts.append(ptr)
            state = "SKIP_INITIAL_SPACE"
        elif state == "SKIP_INITIAL_SPACE":
            if ch == " ":
                ptr += 1
            else:
                state = "FIND_DELIM"
        elif state == "FIND_DELIM":
            if ch == ESCAPE_META:
                ptr += 1
            elif ch == "'":
                inside_quotes = not inside_quotes
            elif ch == " " and not inside_quotes:
                cuts.append(ptr)  # C writes '\0' here
                state = "SKIP_ENDING_SPACE"
            ptr += 1
        else:  # SKIP_ENDING_SPACE
            if ch == " ":
                ptr += 1
            else:
                state = "START"
    fields = []
    for i, start in enumerate(starts):
        stop = cuts[i] if i < len(cuts) else len(buf)
        fields.append(cleanup_separated_string(buf[start:stop], ""))
    return fields


def separate_string_char(buf: str, delim: str, arraylen: int) -> list[str]:
    """``switch_separate_string(buf, delim, argv, arraylen)`` for a delimiter other than
    a space (``cond`` splits its two results on ``:``); the last field keeps the rest."""
    starts: list[int] = []
    cuts: list[int] = []
    inside_quotes = False
    state = "START"
    ptr = 0
    while ptr < len(buf) and len(starts) < arraylen:
        if state == "START":
            starts.append(ptr)
            state = "FIND_DELIM"
            continue
        ch = buf[ptr]
        if ch == ESCAPE_META:
            ptr += 1
        elif ch == "'" and (inside_quotes or "'" in buf[ptr + 1 :]):
            inside_quotes = not inside_quotes
        elif ch == delim and not inside_quotes:
            cuts.append(ptr)  # C writes '\0' here
            state = "START"
        ptr += 1
    fields = []
    for i, start in enumerate(starts):
        stop = cuts[i] if i < len(cuts) else len(buf)
        fields.append(cleanup_separated_string(buf[start:stop], delim))
    return fields
