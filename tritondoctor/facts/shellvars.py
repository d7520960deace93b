"""Static reading of shell scripts (conda activation hooks, ~/.bashrc & co.): the statements
that change LD_LIBRARY_PATH, and how. Nothing is executed; sh/bash/zsh, fish and csh syntax is
approximated line by line, which is what such scripts contain in practice."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

LD_VAR = "LD_LIBRARY_PATH"

# Kinds of ShellAction.
MODIFYING_KINDS = frozenset({"set", "prepend", "append", "wrap", "computed"})
RESTORING_KINDS = frozenset({"restore", "unset", "clear", "edit"})
ADDING_KINDS = frozenset({"set", "prepend", "append", "wrap"})  # whose added entries can be read

_SINGLE_VAR = re.compile(r"^\$(?:\{(?P<braced>[A-Za-z_]\w*)(?:[:\-+=?][^}]*)?\}|(?P<bare>[A-Za-z_]\w*))$")
_VAR_REF = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_]\w*)\}|(?P<bare>[A-Za-z_]\w*))")
_SH_ASSIGN = re.compile(r"(?:^|\s)(?P<var>[A-Za-z_]\w*)=")
_SH_UNSET = re.compile(r"^unset\s+(?:-v\s+)?(?P<names>.*)$")
_FISH_SET = re.compile(r"^set\s+(?P<flags>(?:-{1,2}[A-Za-z-]+\s+)*)(?P<var>[A-Za-z_]\w*)(?:\s+(?P<value>.*))?$")
_CSH_SETENV = re.compile(r"^setenv\s+(?P<var>[A-Za-z_]\w*)(?:\s+(?P<value>.*))?$")
_CSH_UNSETENV = re.compile(r"^unsetenv\s+(?P<names>.*)$")
_LEADING_KEYWORDS = re.compile(r"^(?:(?:then|else|do|and|or|not|\{|\(|!)\s+)+")


# ---------------------------------------------------------------------------------------------
# Parsed statements
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShellAction:
    """One statement of a shell script that changes LD_LIBRARY_PATH or saves it.

    kind: set (replaces it), prepend, append, wrap (both ends), computed (a command's output,
    without itself), edit (derived from itself by a command or ${LD_LIBRARY_PATH#...}: removes
    an entry), restore (from a saved copy such as $CONDA_BACKUP_LD_LIBRARY_PATH), unset, clear
    (set to ""), save (copies it to another variable), noop (LD_LIBRARY_PATH=$LD_LIBRARY_PATH).
    """

    file: str
    line: int
    text: str
    kind: str
    # The entries it puts on the path, $CONDA_PREFIX expanded when the environment is known.
    added: tuple[str, ...] = ()

    @property
    def modifies(self) -> bool:
        return self.kind in MODIFYING_KINDS

    @property
    def restores(self) -> bool:
        return self.kind in RESTORING_KINDS

    @property
    def uses_conda_prefix(self) -> bool:
        return "CONDA_PREFIX" in self.text

    def could_add(self, directory: str, environ: Mapping[str, str], conda_prefix: str | None = None) -> bool:
        """Whether this statement can have put `directory` on the path. Variables are taken from
        `environ`, except $CONDA_PREFIX, which stands for `conda_prefix` (the env the directory
        lies in: whichever env was active when the statement ran)."""
        target = normalise(directory)
        for piece in self.added:
            pattern = _pattern_for(piece, environ, conda_prefix)
            if pattern is not None and pattern.fullmatch(target):
                return True
        return False

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "text": self.text, "kind": self.kind, "added": list(self.added)}


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------


def parse_ld_library_path(text: str, path: str, shell: str, conda_prefix: str | None) -> list[ShellAction]:
    """The statements of a sh/bash/zsh, fish or csh script that touch LD_LIBRARY_PATH.

    A line-oriented approximation, good for what activation hooks and start-up files contain:
    statements split at unquoted ';', '&&', '||', '|' and newlines; comments dropped. Plain
    assignments of other variables earlier in the script (`dirs=/a:/b`) are remembered, so that
    `LD_LIBRARY_PATH="$dirs:$LD_LIBRARY_PATH"` is known to add /a and /b.
    """
    actions: list[ShellAction] = []
    script_vars: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if "=" not in line and "set" not in line and "LD_" not in line:
            continue
        for statement in _statements(line, shell):
            statement = _LEADING_KEYWORDS.sub("", statement.strip())
            if not statement:
                continue
            for what, value, var, substituted in _assignments(statement, shell):
                action = _classify(what, value, var, substituted)
                if action is None:
                    if what == "assign" and var != LD_VAR and not substituted and "$" not in value:
                        script_vars[var] = value
                    continue
                added = _added_entries(value, conda_prefix, script_vars) if action in ADDING_KINDS else ()
                actions.append(ShellAction(file=path, line=number, text=statement, kind=action, added=added))
    return actions


def _statements(line: str, shell: str) -> Iterator[str]:
    out: list[str] = []
    quote = ""
    depth = 0  # inside ${...}, $(...) or, in fish, (...)
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\" and quote == '"' and i + 1 < len(line):
                out.append(line[i:i + 2])
                i += 2
                continue
            if ch == quote:
                quote = ""
            out.append(ch)
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "$" and line[i + 1:i + 2] in ("{", "("):
            depth += 1
            out.append(line[i:i + 2])
            i += 2
            continue
        elif ch == "(" and shell == "fish":
            depth += 1
            out.append(ch)
        elif ch in "})" and depth:
            depth -= 1
            out.append(ch)
        elif depth == 0 and ch == "#" and (i == 0 or line[i - 1].isspace()):
            break
        elif depth == 0 and ch in ";|&":
            yield "".join(out)
            out = []
            while i + 1 < len(line) and line[i + 1] in ";|&":
                i += 1
        else:
            out.append(ch)
        i += 1
    yield "".join(out)


def _assignments(statement: str, shell: str) -> Iterator[tuple[str, str, str, bool]]:
    """(what, value, variable, has command substitution) for each assignment or unset in the
    statement; what is "assign" or "unset"."""
    if shell == "fish":
        match = _FISH_SET.match(statement)
        if match:
            flags = match.group("flags").split()
            if any(f in ("-e", "--erase") for f in flags):
                yield "unset", "", match.group("var"), False
            elif not any(f in ("-q", "--query") for f in flags):
                raw = match.group("value") or ""
                words = [_unquote(w) for w in _words(raw)]
                substituted = "(" in raw.replace("$(", "(")  # (cmd) and $(cmd)
                yield "assign", ":".join(words), match.group("var"), substituted
        return
    if shell == "csh":
        match = _CSH_SETENV.match(statement)
        if match:
            raw = match.group("value") or ""
            yield "assign", _unquote(raw), match.group("var"), "`" in raw
            return
        match = _CSH_UNSETENV.match(statement)
        if match:
            for name in match.group("names").split():
                yield "unset", "", name, False
        return
    match = _SH_UNSET.match(statement)
    if match:
        for name in match.group("names").split():
            yield "unset", "", name, False
        return
    for match in _SH_ASSIGN.finditer(statement):
        rest = statement[match.end():]
        word = next(iter(_words(rest)), "") if not rest[:1].isspace() else ""
        yield "assign", _unquote(word), match.group("var"), "$(" in word or "`" in word


def _self_references(value: str) -> list[tuple[int, int, str]]:
    """Where `value` expands LD_LIBRARY_PATH itself: (start, end, operator) for $LD_LIBRARY_PATH,
    ${LD_LIBRARY_PATH} and ${LD_LIBRARY_PATH<op>...} with nested braces, e.g.
    ${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}} (operator ":+") or ${LD_LIBRARY_PATH#/x:} ("#")."""
    refs: list[tuple[int, int, str]] = []
    i = 0
    while (start := value.find("$", i)) >= 0:
        braced = value.startswith("{" + LD_VAR, start + 1)
        name_end = start + 1 + len(LD_VAR) + (1 if braced else 0)
        follower = value[name_end:name_end + 1]
        if braced and follower and follower in "}:-+=?#%/":
            depth, end = 1, start + 2
            while end < len(value) and depth:
                depth += {"{": 1, "}": -1}.get(value[end], 0)
                end += 1
            operator = "" if follower == "}" else value[name_end:name_end + 2].rstrip("${")
            refs.append((start, end, operator))
            i = end
        elif not braced and value.startswith(LD_VAR, start + 1) and not (follower.isalnum() or follower == "_"):
            refs.append((start, name_end, ""))
            i = name_end
        else:
            i = start + 1
    return refs


def _classify(what: str, value: str, var: str, substituted: bool) -> str | None:
    refs = _self_references(value)
    if var != LD_VAR:
        return "save" if what == "assign" and refs else None
    if what == "unset":
        return "unset"
    if substituted:
        return "edit" if refs else "computed"
    if not refs:
        if value == "":
            return "clear"
        single = _SINGLE_VAR.match(value)
        if single and LD_VAR in (single.group("braced") or single.group("bare") or ""):
            return "restore"
        return "set"
    if any(op[:1] in ("#", "%", "/") for _, _, op in refs):
        return "edit"  # ${LD_LIBRARY_PATH#prefix:} and the like: removes from itself
    before = value[: refs[0][0]].strip(":")
    after = value[refs[-1][1]:].strip(":")
    # ${LD_LIBRARY_PATH:+...:$LD_LIBRARY_PATH} carries its separator inside the reference.
    if before and after:
        return "wrap"
    if before:
        return "prepend"
    if after:
        return "append"
    return "noop"


def _added_entries(value: str, conda_prefix: str | None, script_vars: Mapping[str, str]) -> tuple[str, ...]:
    pieces: list[str] = []
    pos = 0
    for start, end, _ in _self_references(value):
        pieces.append(value[pos:start])
        pos = end
    pieces.append(value[pos:])
    text = ":".join(pieces)
    known = dict(script_vars)
    if conda_prefix:
        known["CONDA_PREFIX"] = conda_prefix

    def expand(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        return known.get(name, match.group(0))

    text = _VAR_REF.sub(expand, text)
    return tuple(normalise(p) for p in text.split(":") if p and p.strip())


def _words(text: str) -> Iterator[str]:
    """Shell words, quotes kept (only whitespace outside quotes and ${...} splits)."""
    word: list[str] = []
    quote = ""
    depth = 0
    for ch in text:
        if quote:
            word.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "{(":
            depth += 1
        elif ch in "})" and depth:
            depth -= 1
        elif ch.isspace() and depth == 0:
            if word:
                yield "".join(word)
                word = []
            continue
        word.append(ch)
    if word:
        yield "".join(word)


def _unquote(word: str) -> str:
    return word.replace('"', "").replace("'", "")


def _pattern_for(piece: str, environ: Mapping[str, str], conda_prefix: str | None) -> re.Pattern[str] | None:
    parts: list[str] = []
    pos = 0
    for match in _VAR_REF.finditer(piece):
        parts.append(re.escape(piece[pos:match.start()]))
        name = match.group("braced") or match.group("bare")
        value = conda_prefix if name == "CONDA_PREFIX" else environ.get(name)
        if not value:
            return None
        parts.append(re.escape(normalise(value)))
        pos = match.end()
    tail = piece[pos:]
    if "$" in tail:  # an expansion this parser does not understand
        return None
    parts.append(re.escape(tail))
    return re.compile("".join(parts))


def normalise(directory: str | None) -> str:
    if not directory:
        return ""
    return directory.rstrip("/") or "/"
