"""How FreeSWITCH expands a dialplan action's data when the action runs, ported from
``switch_channel.c`` (``switch_channel_expand_variables_check``),
``switch_loadable_module.c`` (``switch_api_execute``) and ``mod_commands.c``
(``cond_function``).

- ``${name}`` is the channel variable's value, itself expanded; an unset one is
  nothing at all (not an error, not quotes).
- ``${api(args)}`` and ``${api args}`` run the API command ``api`` with ``args``
  expanded first; ``switch_api_execute`` strips whitespace from both ends of the
  argument before the command sees it.
- ``cond <a> <op> <b> ? <true> : <false>``: an operand is one word, or a single-quoted
  string; ``-ERR`` for anything else, so an empty unquoted operand (an unset
  variable) breaks the expression.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from tests.freeswitch.switch_strings import separate_string_char

Api = Callable[[str], str]
MAX_RECURSION = 100
_SPACE = " \t\n\r\v"


def expand(text: str, variables: Mapping[str, str], apis: Mapping[str, Api], recur: int = 0) -> str:
    """The data an application receives for ``text`` on a channel with ``variables``."""
    if recur > MAX_RECURSION or "$" not in text and "\\" not in text:
        return text
    out: list[str] = []
    p = 0
    nv = False
    while p < len(text):
        ch = text[p]
        following = text[p + 1] if p + 1 < len(text) else ""
        if ch == "\\":
            if following == "$":
                nv = True
                p += 1
                if text[p + 1 : p + 2] == "$":
                    p += 1
                ch = text[p]
            elif following == "'":
                p += 2
                continue
            elif following == "\\":
                out.append("\\")
                p += 2
                continue
        vtype = False
        if ch == "$" and not nv:
            if following == "$":
                p += 1
                following = text[p + 1] if p + 1 < len(text) else ""
            if following == "{":
                vtype = True
            else:
                nv = True
        if nv or not vtype:
            out.append(text[p])
            nv = False
            p += 1
            continue
        # ${...}: find the matching brace
        start = p + 2
        depth = 1
        e = start
        while e < len(text):
            if text[e] == "{" and e != start:
                depth += 1
            elif text[e] == "}":
                depth -= 1
                if depth == 0:
                    break
            e += 1
        body = text[start:e]
        p = e + 1
        out.append(_substitute(body, variables, apis, recur))
    return "".join(out)


def _substitute(
    body: str, variables: Mapping[str, str], apis: Mapping[str, Api], recur: int
) -> str:
    cut = next((i for i, c in enumerate(body) if c in " ("), None)
    if cut is None:
        name = expand(body, variables, apis, recur + 1)
        value = variables.get(name)
        return "" if value is None else expand(value, variables, apis, recur + 1)
    name, args = body[:cut].rstrip(" "), body[cut + 1 :]
    if body[cut] == "(":
        depth = 1
        for i, c in enumerate(args):
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    args = args[:i]
                    break
    name = expand(name, variables, apis, recur + 1).strip(_SPACE)
    args = expand(args, variables, apis, recur + 1).strip(_SPACE)
    api = apis.get(name)
    return "" if api is None else api(args)


def _quoted(text: str, at: int) -> tuple[str, int] | None:
    """A single-quoted operand starting after the quote at ``at``: its text (escapes
    kept, as cond keeps them) and the index after the closing quote."""
    i = at + 1
    while i < len(text):
        if text[i] == "\\" and text[i + 1 : i + 2] in ("\\", "'"):
            i += 2
            continue
        if text[i] == "'":
            return text[at + 1 : i], i + 1
        i += 1
    return None


def is_number(text: str) -> bool:
    """switch_is_number: an optional sign, then digits and dots (so "" is a number)."""
    if text[:1] in ("-", "+"):
        text = text[1:]
    return all(c == "." or c.isdigit() for c in text)


def _atof(text: str) -> float:
    """C's atof on what switch_is_number accepted: the longest float prefix, else 0."""
    for end in range(len(text), 0, -1):
        try:
            return float(text[:end])
        except ValueError:
            continue
    return 0.0


def _operand(text: str) -> tuple[str, int, bool] | None:
    """One operand of cond: a single-quoted string (followed by a space) or a word up
    to the next space; its text, where the rest starts, and whether it was quoted."""
    if text.startswith("'"):
        found = _quoted(text, 0)
        if found is None:
            return None
        value, rest = found
        if rest >= len(text) or text[rest] not in _SPACE:
            return None
        return value, rest, True
    if " " not in text:
        return None
    return text.split(" ", 1)[0], text.index(" ") + 1, False


def cond(cmd: str) -> str:
    """The ``cond`` API command."""
    first = _operand(cmd)
    if first is None:
        return "-ERR"
    a, rest, a_quoted = first
    expr = cmd[rest:].lstrip(_SPACE)
    ops = {"==": "eq", "!=": "ne", ">=": "ge", "<=": "le", ">": "gt", "<": "lt"}
    op = next((o for o in ops if expr.startswith(o)), None)
    if op is None:
        return "-ERR"
    # cond skips one character after the operator without looking at it
    expr = expr[len(op) + 1 :].lstrip(_SPACE)
    second = _operand(expr)
    if second is None:
        return "-ERR"
    b, rest, b_quoted = second
    expr = expr[rest:].lstrip(_SPACE)
    if not expr.startswith("?"):
        return "-ERR"
    argv = separate_string_char(":" + expr[1:], ":", 3)
    if not 2 <= len(argv) <= 3:
        return "-ERR"
    a_num = is_number(a) and not a_quoted
    b_num = is_number(b) and not b_quoted
    a_f = _atof(a) if a_num else float(len(a))
    b_f = _atof(b) if b_num else float(len(b))
    if ops[op] in ("eq", "ne") and not a_num and not b_num:
        true = (a == b) == (ops[op] == "eq")
    else:
        true = {
            "eq": a_f == b_f,
            "ne": a_f != b_f,
            "gt": a_f > b_f,
            "ge": a_f >= b_f,
            "lt": a_f < b_f,
            "le": a_f <= b_f,
        }[ops[op]]
    if len(argv) == 2 and not true:
        return ""
    return argv[1] if true else argv[2]
