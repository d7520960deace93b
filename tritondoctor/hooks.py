"""Shell text that puts directories first on LD_LIBRARY_PATH while an environment is active.

Used by the `conda-hooks` fix (scripts in `$PREFIX/etc/conda/activate.d` / `deactivate.d`, which
conda sources when it activates / deactivates the environment: `*.sh` for sh/bash/zsh, `*.fish`
for fish, `*.csh` for csh/tcsh, activate.d in sorted order and deactivate.d in reverse order;
conda's `activate.py`), by the `venv-hooks` fix (marked blocks inside `bin/activate`,
`bin/activate.fish` and `bin/activate.csh`), and by `tritondoctor env` (one eval-able line).

Semantics, the same in every shell:
- activate: if not already applied (a state variable, one per environment, says so), remember
  LD_LIBRARY_PATH exactly ("unset" or "set:<value>", so unset and empty stay distinct) and put
  the directories in front; an empty or unset old value adds no empty entry (an empty entry
  would mean "the current directory" to the loader). Activating again changes nothing.
- deactivate: if LD_LIBRARY_PATH is still what activate made it, restore the remembered value
  exactly (unset again if it was unset). If the user changed it meanwhile (prepended, appended),
  take out exactly the block activate put in and keep everything else: the last occurrence of
  the directories followed by the remembered value (what prepends and appends leave intact),
  else the first occurrence of the directories alone; copies the user added stay.
- directories are embedded as single-quoted literals: spaces, quotes, `$`, backslashes survive
  (csh cannot quote `!` reliably: a directory with one gets no csh hook).
- every file written whole carries MARKER, which tells ours from a user's file at the same path.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from typing import Sequence

BEGIN = "# >>> tritondoctor: LD_LIBRARY_PATH >>>"
END = "# <<< tritondoctor: LD_LIBRARY_PATH <<<"
DIRS_TAG = "# tritondoctor-dirs: "
CONDA_HOOK_NAME = "tritondoctor-ld-library-path"
# Every file tritondoctor writes whole carries this in its header: a file at one of our paths
# without it is the user's own, and is not replaced silently.
MARKER = "Written by `tritondoctor fix`"
FOREIGN_NOTE = "your own file, not written by tritondoctor"

# Where the venv activate scripts define `deactivate` (venv, virtualenv, uv, pyenv-virtualenv).
SH_DEACTIVATE = re.compile(r"^deactivate\s*\(\)\s*\{[ \t]*$", re.M)
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


def deactivated_value(current: str | None, dirs: Sequence[str], saved: str) -> str | None:
    """What the deactivate hooks leave in LD_LIBRARY_PATH (None: unset), in Python: the same
    rules as the shell text (`saved` is the state variable's value, "unset" or "set:<old>")."""
    old = "" if saved == "unset" else saved[len("set:"):]
    head = joined(dirs)
    if current is None:
        return None
    if current == head + (":" + old if old else ""):
        return None if saved == "unset" else old
    wrapped = f":{current}:"
    needle = f":{head}:" + (f"{old}:" if old else "")
    at = wrapped.rfind(needle)
    if at >= 0:
        wrapped = wrapped[:at] + ":" + (f"{old}:" if old else "") + wrapped[at + len(needle):]
    elif f":{head}:" in wrapped:
        at = wrapped.find(f":{head}:")
        wrapped = wrapped[:at] + ":" + wrapped[at + len(head) + 2:]
    return wrapped[1:-1]


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


def _sh_remove_ours() -> list[str]:
    """sh lines: LD_LIBRARY_PATH (set, and not what activate made it) without the directories
    activate added. Reads _tdx_dirs / _tdx_old (the value activate saw, "" when unset). Only the
    block activate put in: the last occurrence of DIRS followed by the old value (what a later
    prepend or append leaves intact), else the first occurrence of DIRS alone. One line each and
    free of single quotes, so that the csh hooks can hand the same text to /bin/sh."""
    return [
        '_tdx_w=":${LD_LIBRARY_PATH}:"',
        '_tdx_n=":${_tdx_dirs}${_tdx_old:+:${_tdx_old}}:"',
        'case "${_tdx_w}" in',
        ('    *"${_tdx_n}"*) _tdx_h="${_tdx_w%"${_tdx_n}"*}"; _tdx_t="${_tdx_w#"${_tdx_h}${_tdx_n}"}";'
         ' _tdx_w="${_tdx_h}:${_tdx_old:+${_tdx_old}:}${_tdx_t}" ;;'),
        ('    *":${_tdx_dirs}:"*) _tdx_h="${_tdx_w%%":${_tdx_dirs}:"*}"; _tdx_t="${_tdx_w#"${_tdx_h}:${_tdx_dirs}:"}";'
         ' _tdx_w="${_tdx_h}:${_tdx_t}" ;;'),
        "esac",
        '_tdx_w="${_tdx_w#?}"',  # the ':' added in front and at the end (always there)
        'LD_LIBRARY_PATH="${_tdx_w%?}"',
    ]


def sh_restore(dirs: Sequence[str], var: str, indent: str = "") -> str:
    q = sh_quote(joined(dirs))
    remove = [f"        {line}" for line in _sh_remove_ours()]
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
        '    elif [ -n "${LD_LIBRARY_PATH+x}" ]; then',
        *remove,
        "        export LD_LIBRARY_PATH",
        "    fi",
        f"    unset {var} _tdx_dirs _tdx_old _tdx_w _tdx_n _tdx_h _tdx_t",
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


def _fish_remove_ours() -> list[str]:
    """fish lines: the same removal as `_sh_remove_ours` (the last occurrence of DIRS followed by
    the old value, else the first occurrence of DIRS alone), with `string split`."""
    return [
        'set -l _tdx_w ":$LD_LIBRARY_PATH:"',
        'set -l _tdx_n ":$_tdx_dirs:"',
        'set -l _tdx_keep ":"',
        'if test -n "$_tdx_old"',
        '    set _tdx_n ":$_tdx_dirs:$_tdx_old:"',
        '    set _tdx_keep ":$_tdx_old:"',
        "end",
        'set -l _tdx_p (string split -r -m1 -- "$_tdx_n" "$_tdx_w")',
        "if test (count $_tdx_p) -eq 2",
        '    set _tdx_w "$_tdx_p[1]$_tdx_keep$_tdx_p[2]"',
        "else",
        '    set _tdx_p (string split -m1 -- ":$_tdx_dirs:" "$_tdx_w")',
        "    if test (count $_tdx_p) -eq 2",
        '        set _tdx_w "$_tdx_p[1]:$_tdx_p[2]"',
        "    end",
        "end",
        "set -gx LD_LIBRARY_PATH (string replace -ra -- '^:|:$' '' \"$_tdx_w\" | string collect)",
    ]


def fish_restore(dirs: Sequence[str], var: str, indent: str = "") -> str:
    q = fish_quote(joined(dirs))
    remove = [f"        {line}" for line in _fish_remove_ours()]
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
        *remove,
        "    end",
        f"    set -e {var}",
        "end",
    ]
    return "".join(f"{indent}{line}\n" for line in lines)


# ---------------------------------------------------------------------------------------------
# csh / tcsh (conda sources activate.d/*.csh; venvs have bin/activate.csh). csh has no string
# operations, so the removal on deactivate hands `_sh_remove_ours` to /bin/sh through an
# environment variable (`printenv | sh`: a command substitution must not contain `$`, which csh
# would expand inside it) and reads the result back.
# ---------------------------------------------------------------------------------------------


def csh_quote(text: str) -> str:
    """A csh single-quoted word. `!` is refused: history substitution would act on it in an
    interactive shell, and a backslash before it would stay in a non-interactive one."""
    if "!" in text or "\n" in text:
        raise HookError(f"{text!r}: contains {'!' if '!' in text else 'a newline'}, which csh cannot quote reliably")
    return "'" + text.replace("'", "'\"'\"'") + "'"


def csh_apply(dirs: Sequence[str], var: str, indent: str = "") -> str:
    q = csh_quote(joined(dirs))
    lines = [
        f"if ( ! $?{var} ) then",
        "    if ( $?LD_LIBRARY_PATH ) then",
        f'        setenv {var} "set:${{LD_LIBRARY_PATH}}"',
        '        if ( "x${LD_LIBRARY_PATH}" != x ) then',
        f'            setenv LD_LIBRARY_PATH {q}":${{LD_LIBRARY_PATH}}"',
        "        else",
        f"            setenv LD_LIBRARY_PATH {q}",
        "        endif",
        "    else",
        f"        setenv {var} unset",
        f"        setenv LD_LIBRARY_PATH {q}",
        "    endif",
        "endif",
    ]
    return "".join(f"{indent}{line}\n" for line in lines)


def _csh_sh_program(var: str) -> str:
    """The /bin/sh program of the csh restore (one line, no single quote, no `!`): prints the value
    LD_LIBRARY_PATH gets (set) from _TDX_DIRS, the saved state and the current value."""
    lines = [
        '_tdx_dirs="${_TDX_DIRS}"',
        f'case "${{{var}}}" in unset) _tdx_old= ;; *) _tdx_old="${{{var}#set:}}" ;; esac',
        'if [ "${LD_LIBRARY_PATH}" = "${_tdx_dirs}${_tdx_old:+:${_tdx_old}}" ]; then LD_LIBRARY_PATH="${_tdx_old}"; else',
        *_sh_remove_ours(),
        "fi",
        'printf %s "${LD_LIBRARY_PATH}"',
    ]
    program = " ".join(line.strip() + ("" if line.endswith((" in", "then", "else", ";;")) else ";") for line in lines)
    if "'" in program or "!" in program:  # it travels inside a csh single-quoted word
        raise HookError("internal: the csh restore program cannot be quoted for csh")
    return program


def csh_restore(dirs: Sequence[str], var: str, indent: str = "") -> str:
    q = csh_quote(joined(dirs))
    lines = [
        f"if ( $?{var} ) then",
        f"    setenv _TDX_DIRS {q}",
        "    if ( $?LD_LIBRARY_PATH ) then",
        f'        if ( "x${{{var}}}" == xunset && "x${{LD_LIBRARY_PATH}}" == "x${{_TDX_DIRS}}" ) then',
        "            unsetenv LD_LIBRARY_PATH",
        "        else",
        f"            setenv _TDX_SH '{_csh_sh_program(var)}'",
        '            setenv LD_LIBRARY_PATH "`printenv _TDX_SH | /bin/sh`"',
        "            unsetenv _TDX_SH",
        "        endif",
        "    endif",
        "    unsetenv _TDX_DIRS",
        f"    unsetenv {var}",
        "endif",
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


_BODIES = {"sh": (sh_apply, sh_restore), "fish": (fish_apply, fish_restore), "csh": (csh_apply, csh_restore)}
EXTENSIONS = {"sh": ".sh", "fish": ".fish", "csh": ".csh"}
SHELL_NAMES = {"sh": "sh/bash/zsh", "fish": "fish", "csh": "csh/tcsh"}


def conda_script(dirs: Sequence[str], prefix: str, phase: str, shell: str) -> str:
    """The text of `etc/conda/{phase}.d/tritondoctor-ld-library-path.{sh|fish|csh}`."""
    check_dirs(dirs)
    var = state_var(prefix)
    apply, restore = _BODIES[shell]
    if phase == "activate":
        what = "puts the directories below first on LD_LIBRARY_PATH while this environment is active."
        twin = "deactivate.d"
        body = apply(dirs, var)
    elif phase == "deactivate":
        what = "takes the directories below off LD_LIBRARY_PATH again (restores it exactly when unchanged)."
        twin = "activate.d"
        body = restore(dirs, var)
    else:
        raise ValueError(phase)
    return _HEADER.format(fix_id="conda-hooks", what=what, twin=twin, dirs=dirs_line(dirs)) + body


def conda_script_path(prefix: str, phase: str, shell: str) -> str:
    return os.path.join(prefix, "etc", "conda", f"{phase}.d", CONDA_HOOK_NAME + EXTENSIONS[shell])


def is_ours(text: str) -> bool:
    """Whether a hook file's text was written by tritondoctor (its header carries the marker)."""
    return MARKER in text


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


def strip_blocks(text: str, begin: str = BEGIN, end: str = END) -> str:
    """`text` without any block of ours (each block is whole lines from `begin` to `end`); an
    unterminated one is an error, never a reason to drop the rest of the user's file."""
    out: list[str] = []
    inside = False
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if not inside and stripped == begin:
            inside = True
            continue
        if inside:
            if stripped == end:
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
    """`bin/activate` (shell "sh"), `bin/activate.fish` ("fish") or `bin/activate.csh` ("csh")
    with our two blocks: one where deactivation happens (restores LD_LIBRARY_PATH; activate runs
    `deactivate nondestructive` first, so activating again never adds twice), one at the end
    (applies). csh's `deactivate` is a one-line alias: our first block re-defines it to source
    `venv_csh_restore_path(prefix)` before the venv's own text."""
    check_dirs(dirs)
    var = state_var(prefix)
    text = strip_blocks(original)
    if shell == "csh":
        return _venv_csh_text(text, dirs, prefix, var)
    pattern = SH_DEACTIVATE if shell == "sh" else _FISH_DEACTIVATE
    match = pattern.search(text)
    if match is None:
        what = "deactivate () {" if shell == "sh" else "function deactivate"
        raise HookError(f"no `{what}` line found to hook LD_LIBRARY_PATH's restore into")
    restore = sh_restore(dirs, var, "    ") if shell == "sh" else fish_restore(dirs, var, "    ")
    apply = sh_apply(dirs, var) if shell == "sh" else fish_apply(dirs, var)
    restore_block = _block(restore, dirs, "    ", "Restore LD_LIBRARY_PATH as it was before activation.")
    return insert_blocks(text, match.end(), restore_block, _apply_block(apply, dirs))


def _apply_block(apply: str, dirs: Sequence[str]) -> str:
    return _block(apply, dirs, "", "Put the directories PyTriton needs first on LD_LIBRARY_PATH.")


def insert_blocks(text: str, after: int, restore_block: str, apply_block: str) -> str:
    """`text` with `restore_block` after the line ending at `after` and `apply_block` at the end."""
    cut = after + 1 if after < len(text) and text[after] == "\n" else after
    head, tail = text[:cut], text[cut:]
    if not head.endswith("\n"):
        head += "\n"
    if tail and not tail.endswith("\n"):
        tail += "\n"
    return head + restore_block + tail + apply_block


# The venv's (virtualenv's, uv's) `deactivate` in activate.csh: one line, one single-quoted word.
_CSH_DEACTIVATE = re.compile(r"^alias deactivate[ \t]+('[^'\n]*')[ \t]*$", re.M)
_CSH_ALIAS_UNSAFE = ('"', "$", "`", "!", "'", "\\", "\n")
CSH_RESTORE_NAME = "tritondoctor-deactivate.csh"


def venv_csh_restore_path(prefix: str) -> str:
    return os.path.join(prefix, "bin", CSH_RESTORE_NAME)


def venv_csh_restore_script(dirs: Sequence[str], prefix: str) -> str:
    """The file our `deactivate` alias sources (a csh alias cannot hold an if/endif block)."""
    check_dirs(dirs)
    header = (f"# {MARKER} (fix id venv-hooks) for PyTriton: sourced by `deactivate` (bin/activate.csh);\n"
              "# takes the directories below off LD_LIBRARY_PATH again. Undo with `tritondoctor fix --undo`.\n"
              f"{dirs_line(dirs)}\n")
    return header + csh_restore(dirs, state_var(prefix))


def _venv_csh_text(text: str, dirs: Sequence[str], prefix: str, var: str) -> str:
    match = _CSH_DEACTIVATE.search(text)
    if match is None:
        raise HookError("no one-line `alias deactivate '...'` found to hook LD_LIBRARY_PATH's restore into")
    restore_file = venv_csh_restore_path(prefix)
    bad = [c for c in _CSH_ALIAS_UNSAFE if c in restore_file]
    if bad:
        raise HookError(f"{restore_file!r}: contains {bad[0]!r}, which a csh alias cannot quote")
    alias = f"alias deactivate 'test $?{var} != 0 && source \"{restore_file}\"; '{match.group(1)}\n"
    restore_block = _block(alias, dirs, "", "Restore LD_LIBRARY_PATH as it was before activation.")
    return insert_blocks(text, match.end(), restore_block, _apply_block(csh_apply(dirs, var), dirs))


# ---------------------------------------------------------------------------------------------
# `tritondoctor env`
# ---------------------------------------------------------------------------------------------


def env_exports(dirs: Sequence[str], shell: str) -> str:
    """One line that puts `dirs` first on LD_LIBRARY_PATH as it is when the line runs (not as it
    was when tritondoctor ran), and changes nothing when they already are first (eval twice =
    once); no empty entry when it was unset or empty."""
    check_dirs(dirs)
    head = joined(dirs)
    if shell == "fish":
        # fish splits LD_LIBRARY_PATH (a path variable) on ':'; quoted, a slice joins with ':'.
        q = fish_quote(head)
        return (f'if test "$LD_LIBRARY_PATH[1..{len(dirs)}]" != {q}; if test -n "$LD_LIBRARY_PATH"; '
                f'set -gx LD_LIBRARY_PATH {q}":$LD_LIBRARY_PATH"; else; set -gx LD_LIBRARY_PATH {q}; end; end\n')
    q = sh_quote(head)
    return (f'case "${{LD_LIBRARY_PATH-}}" in {q}|{q}:*) ;; '
            f'*) export LD_LIBRARY_PATH={q}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}} ;; esac\n')
