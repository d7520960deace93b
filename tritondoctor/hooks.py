"""Shell text that puts directories first on LD_LIBRARY_PATH while an environment is active.

Used by the `conda-hooks` fix (scripts in `$PREFIX/etc/conda/activate.d` / `deactivate.d`, which
conda sources when it activates / deactivates the environment: `*.sh` for sh/bash/zsh, `*.fish`
for fish, activate.d in sorted order and deactivate.d in reverse order; conda's `activate.py`),
by the `venv-hooks` fix (marked blocks inside `bin/activate` and `bin/activate.fish`), and by
`tritondoctor env` (plain exports).

Semantics, the same in every shell:
- activate: if not already applied (a state variable, one per environment, says so), remember
  LD_LIBRARY_PATH exactly ("unset" or "set:<value>", so unset and empty stay distinct) and put
  the directories in front; an empty or unset old value adds no empty entry (an empty entry
  would mean "the current directory" to the loader). Activating again changes nothing.
- deactivate: if LD_LIBRARY_PATH is still what activate made it, restore the remembered value
  exactly (unset again if it was unset); if something changed it since, only take our
  directories off the front when they are still there, and keep the rest of the user's change.
- directories are embedded as single-quoted literals: spaces, quotes, `$`, backslashes survive.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from typing import Mapping, Sequence

BEGIN = "# >>> tritondoctor: LD_LIBRARY_PATH >>>"
END = "# <<< tritondoctor: LD_LIBRARY_PATH <<<"
DIRS_TAG = "# tritondoctor-dirs: "
CONDA_HOOK_NAME = "tritondoctor-ld-library-path"

# Where the venv activate scripts define `deactivate` (venv, virtualenv, uv, pyenv-virtualenv).
_SH_DEACTIVATE = re.compile(r"^deactivate\s*\(\)\s*\{[ \t]*$", re.M)
_FISH_DEACTIVATE = re.compile(r"^function deactivate\b.*$", re.M)


class HookError(Exception):
    """A one-line reason why a hook cannot be written."""


def state_var(prefix: str) -> str:
    """The variable that remembers LD_LIBRARY_PATH while `prefix` is active (one per environment,
    so stacked environments each restore their own)."""
    digest = hashlib.sha256(os.path.realpath(prefix).encode()).hexdigest()[:10].upper()
    return f"TRITONDOCTOR_SAVED_LD_LIBRARY_PATH_{digest}"


def check_dirs(dirs: Sequence[str]) -> None:
    if not dirs:
        raise HookError("no directories to put on LD_LIBRARY_PATH")
    for directory in dirs:
        if not directory.startswith("/"):
            raise HookError(f"{directory!r}: not an absolute path")
        bad = [c for c in (":", ";", "\n", "\0") if c in directory]
        if bad:
            raise HookError(f"{directory!r}: contains {bad[0]!r}, which LD_LIBRARY_PATH cannot express "
                            "(the loader splits entries on ':' and ';')")


def sh_quote(text: str) -> str:
    return shlex.quote(text)


def fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def joined(dirs: Sequence[str]) -> str:
    return ":".join(dirs)


def dirs_line(dirs: Sequence[str]) -> str:
    return DIRS_TAG + json.dumps(list(dirs))


def parse_dirs(text: str) -> list[str] | None:
    """The directories a hook text written by us carries (None: no hook of ours in `text`)."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(DIRS_TAG):
            try:
                value = json.loads(stripped[len(DIRS_TAG):])
            except ValueError:
                return None
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
    return None


# ---------------------------------------------------------------------------------------------
# sh / bash / zsh
# ---------------------------------------------------------------------------------------------


def sh_apply(dirs: Sequence[str], var: str, indent: str = "") -> str:
    q = sh_quote(joined(dirs))
    lines = [
        f'if [ -z "${{{var}+x}}" ]; then',
        f"    _tdx_dirs={q}",
        '    if [ -n "${LD_LIBRARY_PATH+x}" ]; then',
        f'        {var}="set:${{LD_LIBRARY_PATH}}"',
        "    else",
        f"        {var}=unset",
        "    fi",
        f"    export {var}",
        '    LD_LIBRARY_PATH="${_tdx_dirs}${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}"',
        "    export LD_LIBRARY_PATH",
        "    unset _tdx_dirs",
        "fi",
    ]
    return "".join(f"{indent}{line}\n" for line in lines)


def sh_restore(dirs: Sequence[str], var: str, indent: str = "") -> str:
    q = sh_quote(joined(dirs))
    lines = [
        f'if [ -n "${{{var}+x}}" ]; then',
        f"    _tdx_dirs={q}",
        f'    case "${{{var}}}" in',
        "        unset) _tdx_old= ;;",
        f'        *) _tdx_old="${{{var}#set:}}" ;;',
        "    esac",
        '    if [ -n "${LD_LIBRARY_PATH+x}" ] && [ "${LD_LIBRARY_PATH}" = "${_tdx_dirs}${_tdx_old:+:${_tdx_old}}" ]; then',
        f'        if [ "${{{var}}}" = unset ]; then',
        "            unset LD_LIBRARY_PATH",
        "        else",
        '            LD_LIBRARY_PATH="${_tdx_old}"',
        "            export LD_LIBRARY_PATH",
        "        fi",
        "    else",
        '        case "${LD_LIBRARY_PATH-}" in',
        '            "${_tdx_dirs}":*)',
        '                LD_LIBRARY_PATH="${LD_LIBRARY_PATH#"${_tdx_dirs}":}"',
        "                export LD_LIBRARY_PATH ;;",
        "        esac",
        "    fi",
        f"    unset {var} _tdx_dirs _tdx_old",
        "fi",
    ]
    return "".join(f"{indent}{line}\n" for line in lines)


# ---------------------------------------------------------------------------------------------
# fish (>= 3.0: LD_LIBRARY_PATH is a path variable, joined with ':' when quoted or exported)
# ---------------------------------------------------------------------------------------------


def fish_apply(dirs: Sequence[str], var: str, indent: str = "") -> str:
    q = fish_quote(joined(dirs))
    lines = [
        f"if not set -q {var}",
        f"    set -l _tdx_dirs {q}",
        "    if set -q LD_LIBRARY_PATH",
        f'        set -gx {var} "set:$LD_LIBRARY_PATH"',
        '        if test -n "$LD_LIBRARY_PATH"',
        '            set -gx LD_LIBRARY_PATH "$_tdx_dirs:$LD_LIBRARY_PATH"',
        "        else",
        '            set -gx LD_LIBRARY_PATH "$_tdx_dirs"',
        "        end",
        "    else",
        f"        set -gx {var} unset",
        '        set -gx LD_LIBRARY_PATH "$_tdx_dirs"',
        "    end",
        "end",
    ]
    return "".join(f"{indent}{line}\n" for line in lines)


def fish_restore(dirs: Sequence[str], var: str, indent: str = "") -> str:
    q = fish_quote(joined(dirs))
    lines = [
        f"if set -q {var}",
        f"    set -l _tdx_dirs {q}",
        f'    set -l _tdx_saved "${var}"',
        '    set -l _tdx_old ""',
        '    if test "$_tdx_saved" != unset',
        '        set _tdx_old (string sub -s 5 -- "$_tdx_saved" | string collect)',
        "    end",
        '    set -l _tdx_ours "$_tdx_dirs"',
        '    if test -n "$_tdx_old"',
        '        set _tdx_ours "$_tdx_dirs:$_tdx_old"',
        "    end",
        '    if set -q LD_LIBRARY_PATH; and test "$LD_LIBRARY_PATH" = "$_tdx_ours"',
        '        if test "$_tdx_saved" = unset',
        "            set -e LD_LIBRARY_PATH",
        "        else",
        '            set -gx LD_LIBRARY_PATH "$_tdx_old"',
        "        end",
        "    else if set -q LD_LIBRARY_PATH",
        '        set -l _tdx_n (string length -- "$_tdx_dirs:")',
        '        set -l _tdx_head (string sub -l $_tdx_n -- "$LD_LIBRARY_PATH" | string collect)',
        '        if test "$_tdx_head" = "$_tdx_dirs:"',
        '            set -gx LD_LIBRARY_PATH (string sub -s (math $_tdx_n + 1) -- "$LD_LIBRARY_PATH" | string collect)',
        "        end",
        "    end",
        f"    set -e {var}",
        "end",
    ]
    return "".join(f"{indent}{line}\n" for line in lines)


# ---------------------------------------------------------------------------------------------
# conda: activate.d / deactivate.d scripts
# ---------------------------------------------------------------------------------------------

_HEADER = (
    "# Written by `tritondoctor fix` (fix id {fix_id}) for PyTriton: {what}\n"
    "# Undo with `tritondoctor fix --undo` (or delete this file and its {twin} twin).\n"
    "{dirs}\n"
)


def conda_script(dirs: Sequence[str], prefix: str, phase: str, shell: str) -> str:
    """The text of `etc/conda/{phase}.d/tritondoctor-ld-library-path.{sh|fish}`."""
    check_dirs(dirs)
    var = state_var(prefix)
    if phase == "activate":
        what = "puts the directories below first on LD_LIBRARY_PATH while this environment is active."
        twin = "deactivate.d"
        body = sh_apply(dirs, var) if shell == "sh" else fish_apply(dirs, var)
    elif phase == "deactivate":
        what = "restores LD_LIBRARY_PATH as it was before this environment was activated."
        twin = "activate.d"
        body = sh_restore(dirs, var) if shell == "sh" else fish_restore(dirs, var)
    else:
        raise ValueError(phase)
    return _HEADER.format(fix_id="conda-hooks", what=what, twin=twin, dirs=dirs_line(dirs)) + body


def conda_script_path(prefix: str, phase: str, shell: str) -> str:
    ext = ".sh" if shell == "sh" else ".fish"
    return os.path.join(prefix, "etc", "conda", f"{phase}.d", CONDA_HOOK_NAME + ext)


# ---------------------------------------------------------------------------------------------
# venv: marked blocks in bin/activate and bin/activate.fish
# ---------------------------------------------------------------------------------------------


def _block(body: str, dirs: Sequence[str], indent: str, note: str) -> str:
    return (
        f"{indent}{BEGIN}\n"
        f"{indent}# {note} Written by `tritondoctor fix` (fix id venv-hooks); undo with\n"
        f"{indent}# `tritondoctor fix --undo` or delete this block.\n"
        f"{indent}{dirs_line(dirs)}\n"
        f"{body}"
        f"{indent}{END}\n"
    )


def strip_blocks(text: str) -> str:
    """`text` without any block of ours (each block is whole lines from BEGIN to END)."""
    out: list[str] = []
    inside = False
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if not inside and stripped == BEGIN:
            inside = True
            continue
        if inside:
            if stripped == END:
                inside = False
            continue
        out.append(line)
    if inside:
        raise HookError("an unterminated tritondoctor block (a BEGIN line without END); fix it by hand")
    return "".join(out)


def blocks_of(text: str) -> str:
    """Our blocks in `text`, as they appear there (for display)."""
    out: list[str] = []
    inside = False
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped == BEGIN:
            inside = True
        if inside:
            out.append(line)
        if stripped == END:
            inside = False
    return "".join(out)


def has_block(text: str) -> bool:
    return any(line.strip() == BEGIN for line in text.splitlines())


def venv_activate_text(original: str, dirs: Sequence[str], prefix: str, shell: str) -> str:
    """`bin/activate` (shell "sh") or `bin/activate.fish` (shell "fish") with our two blocks: one
    at the top of `deactivate` (restores LD_LIBRARY_PATH; activate calls `deactivate
    nondestructive` first, so activating again never adds twice), one at the end (applies)."""
    check_dirs(dirs)
    var = state_var(prefix)
    text = strip_blocks(original)
    pattern = _SH_DEACTIVATE if shell == "sh" else _FISH_DEACTIVATE
    match = pattern.search(text)
    if match is None:
        what = "deactivate () {" if shell == "sh" else "function deactivate"
        raise HookError(f"no `{what}` line found to hook LD_LIBRARY_PATH's restore into")
    restore = sh_restore(dirs, var, "    ") if shell == "sh" else fish_restore(dirs, var, "    ")
    apply = sh_apply(dirs, var) if shell == "sh" else fish_apply(dirs, var)
    restore_block = _block(restore, dirs, "    ", "Restore LD_LIBRARY_PATH as it was before activation.")
    apply_block = _block(apply, dirs, "", "Put the directories PyTriton needs first on LD_LIBRARY_PATH.")
    cut = match.end() + 1 if match.end() < len(text) and text[match.end()] == "\n" else match.end()
    head, tail = text[:cut], text[cut:]
    if not head.endswith("\n"):
        head += "\n"
    if tail and not tail.endswith("\n"):
        tail += "\n"
    return head + restore_block + tail + apply_block


# ---------------------------------------------------------------------------------------------
# `tritondoctor env`
# ---------------------------------------------------------------------------------------------


def env_value(dirs: Sequence[str], environ: Mapping[str, str]) -> str:
    """LD_LIBRARY_PATH with `dirs` in front; unchanged when they already are (eval twice = once)."""
    current = environ.get("LD_LIBRARY_PATH")
    head = joined(dirs)
    if current is not None and (current == head or current.startswith(head + ":")):
        return current
    return f"{head}:{current}" if current else head


def env_exports(dirs: Sequence[str], environ: Mapping[str, str], shell: str) -> str:
    check_dirs(dirs)
    value = env_value(dirs, environ)
    if shell == "fish":
        return f"set -gx LD_LIBRARY_PATH {fish_quote(value)}\n"
    return f"export LD_LIBRARY_PATH={sh_quote(value)}\n"
