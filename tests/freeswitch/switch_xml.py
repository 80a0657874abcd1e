"""FreeSWITCH's configuration preprocessor, ported line by line from ``switch_xml.c``
(``preprocess``, ``preprocess_glob``, ``expand_vars``).

FreeSWITCH does not hand its XML files to an XML parser as they are. It first reads
each file line by line and:

- expands ``$${name}`` from the global variables (set by ``X-PRE-PROCESS set``);
- drops every line holding ``<include>``, ``</include>`` or ``<?``;
- runs every line holding ``<X-PRE-PROCESS cmd="..." data="..."/>`` and drops it,
  *wherever it stands*: inside an XML comment too (an ``include`` globs relative to
  the file's folder and preprocesses what it finds in place, up to 100 levels);
- runs ``<!--#include "..."-->`` style commands.

Only then is the result parsed as XML. A test that parses a file with ElementTree
directly skips comments and so cannot see what the preprocessor will do with them.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path

MAX_LEVEL = 100  # preprocess() refuses to go deeper


@dataclass
class Preprocessor:
    variables: dict[str, str] = field(default_factory=dict)  # switch_core_set_variable
    errors: list[str] = field(default_factory=list)  # what FreeSWITCH logs at ERROR
    out: list[str] = field(default_factory=list)

    def run(self, file: Path) -> str:
        """The text FreeSWITCH parses as XML after preprocessing ``file``."""
        self.preprocess(file.parent, file, 0)
        return "".join(self.out)

    def preprocess(self, cwd: Path, file: Path, rlevel: int) -> int:
        if rlevel > MAX_LEVEL:
            return -1
        try:
            text = file.read_text()
        except OSError as exc:
            self.errors.append(f"Couldn't open {file} ({exc.strerror})")
            return -1
        ml = False
        for number, buf in enumerate(text.splitlines(keepends=True), 1):
            bp, err = self.expand_vars(buf)
            if err:
                self.errors.append(f"Error [{err}] in file {file} line {number}")
            if "<include>" in buf or "</include>" in buf or "<?" in buf:
                continue
            if ml:
                end = buf.find("-->")
                if end < 0:
                    continue
                ml = False
                bp = buf[end + 3 :]
            at = bp.lower().find("x-pre-process")
            if at >= 0:
                if at == 0 or bp[at - 1] != "<":
                    continue
                command = _attribute(bp, at, "cmd")
                if command is None:
                    continue
                name, rest = command
                data = _attribute(bp, rest, "data")
                if data is not None:
                    self._command(name, data[0], cwd, rlevel)
                continue
            cmd = bp.find("<!--#")
            if cmd >= 0:
                self.out.append(bp[:cmd])
                end = bp.find("-->", cmd)
                if end >= 0:
                    self.out.append(bp[end + 3 :])
                    line = bp[cmd + 5 : end]
                else:
                    ml = True
                    line = bp[cmd + 5 :]
                line = line.split("\r", 1)[0].split("\n", 1)[0]
                verb, space, arg = line.partition(" ")
                if space:
                    first = arg.find('"')
                    second = arg.find('"', first + 1) if first >= 0 else -1
                    if second >= 0:
                        arg = arg[first + 1 : second]
                    self._command(verb, arg, cwd, rlevel)
                continue
            self.out.append(bp)
        return 0

    def expand_vars(self, buf: str) -> tuple[str, str | None]:
        """``$${name}`` becomes the global variable's value (nothing when unset)."""
        if "$${" not in buf:
            return buf, None
        out: list[str] = []
        err = None
        i = 0
        while i < len(buf):
            if buf.startswith("$${", i):
                end = _find_end_paren(buf, i + 2)
                if end is not None:
                    out.append(self.variables.get(buf[i + 3 : end], ""))
                    i = end + 1
                    continue
                err = "unterminated ${var}"
            out.append(buf[i])
            i += 1
        return "".join(out), err

    def _command(self, name: str, data: str, cwd: Path, rlevel: int) -> None:
        name = name.lower()
        if name == "set":
            var, eq, value = data.partition("=")
            if eq:
                self.variables[var.rstrip(" ")] = value.lstrip(" ")
        elif name == "include":
            self._include(cwd, data, rlevel + 1)
        else:  # exec, exec-set, stun-set, env-set: not used by the project's files
            self.errors.append(f"preprocessor command {name!r} is not emulated")

    def _include(self, cwd: Path, pattern: str, rlevel: int) -> None:
        full = pattern if pattern.startswith("/") else f"{cwd}/{pattern}"
        matches = sorted(glob.glob(full))
        for path in matches:
            if self.preprocess(Path(path).parent, Path(path), rlevel) < 0 and rlevel > MAX_LEVEL:
                self.errors.append(f"Error including {full} (Maximum recursion limit reached)")


def _attribute(line: str, start: int, name: str) -> tuple[str, int] | None:
    """``name`` then ``=`` then a double-quoted value, searched from ``start`` the way
    preprocess() does (case-insensitive, anything in between); the value and where
    the search may go on."""
    at = line.lower().find(name, start)
    if at < 0:
        return None
    eq = line.find("=", at)
    if eq < 0:
        return None
    quote = line.find('"', eq)
    if quote < 0:
        return None
    end = line.find('"', quote + 1)
    if end < 0:
        return line[quote + 1 :], len(line)
    return line[quote + 1 : end], end + 1


def _find_end_paren(text: str, start: int) -> int | None:
    """switch_find_end_paren: the ``}`` that closes the ``{`` at ``start``."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return None
