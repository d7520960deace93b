"""The one place versions are parsed: dotted numbers (glibc, CUDA, drivers, Python minors), and
just enough PEP 440 for package checks — release tuples, pre-releases, simple specifiers such as
`numpy<2.0.0,>=1.21` (tritondoctor does not depend on `packaging`)."""

from __future__ import annotations

import os
import re

_VERSION_RE = re.compile(r"^\s*v?(\d+(?:\.\d+)*)(.*)$", re.I)
_PRE_RE = re.compile(r"^[-_.]?(a|b|c|rc|alpha|beta|pre|preview|dev)", re.I)
_REQ_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(?:\(([^)]*)\)|([^;]*))?\s*(?:;(.*))?$")


def numeric(text: str | None, parts: int | None = None) -> tuple[int, ...] | None:
    """"12.6.77" -> (12, 6, 77); the first `parts` numbers only when given; None unless every
    dot-separated part (of those) is a number."""
    pieces = (text or "").strip().split(".")
    if parts is not None:
        pieces = pieces[:parts]
    try:
        out = tuple(int(p) for p in pieces)
    except ValueError:
        return None
    return out if out and (parts is None or len(out) == parts) else None


def glibc(text: str | None) -> tuple[int, int] | None:
    """confstr's "glibc 2.36" -> (2, 36)."""
    parts = (text or "").split()
    if len(parts) != 2 or parts[0] != "glibc":
        return None
    found = numeric(parts[1], parts=2)
    return (found[0], found[1]) if found else None


def running_glibc() -> tuple[int, int] | None:
    try:
        return glibc(os.confstr("CS_GNU_LIBC_VERSION"))
    except (ValueError, OSError):
        return None


def digits(text: str) -> tuple[int, ...]:
    """Every run of digits before a local "+..." suffix: "12.2.0_h77fa898_0" -> (12, 2, 0, 77, 898, 0)."""
    return tuple(int(p) for p in re.findall(r"\d+", text.split("+")[0]))


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse(text: str | None) -> tuple[tuple[int, ...], bool] | None:
    """(release, is_prerelease) or None."""
    match = _VERSION_RE.match(text or "")
    if not match:
        return None
    release = tuple(int(p) for p in match.group(1).split("."))
    return release, bool(_PRE_RE.match(match.group(2) or ""))


def release(text: str | None) -> tuple[int, ...]:
    parsed = parse(text)
    return parsed[0] if parsed else ()


def _pad(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    width = max(len(a), len(b))
    return a + (0,) * (width - len(a)), b + (0,) * (width - len(b))


def satisfies(version: str, specifier: str) -> bool | None:
    """Does `version` meet every clause of `specifier` (e.g. "<2.0.0,>=1.21")? None: cannot tell."""
    parsed = parse(version)
    if parsed is None:
        return None
    have, pre = parsed
    for clause in filter(None, (c.strip() for c in specifier.split(","))):
        match = re.match(r"^(~=|===|==|!=|<=|>=|<|>)\s*(.+)$", clause)
        if not match:
            return None
        op, raw = match.groups()
        if raw.endswith(".*") and op in ("==", "!="):
            prefix = release(raw[:-2])
            equal = have[: len(prefix)] == prefix
            if equal != (op == "=="):
                return False
            continue
        want_parsed = parse(raw)
        if want_parsed is None:
            return None
        want, want_pre = want_parsed
        a, b = _pad(have, want)
        if op in ("==", "==="):
            ok = a == b and pre == want_pre
        elif op == "!=":
            ok = not (a == b and pre == want_pre)
        elif op == "<":
            # release-only: PEP 440's <V also excludes V's own pre-releases (2.0.0rc1 is not <2.0.0)
            ok = a < b
        elif op == "<=":
            ok = a < b or (a == b and (pre or not want_pre))
        elif op == ">":
            ok = a > b
        elif op == ">=":
            ok = a > b or (a == b and (want_pre or not pre))
        else:  # ~=
            if len(want) < 2:
                return None
            upper = want[:-2] + (want[-2] + 1,)
            ok = a >= b and _pad(have, upper)[0] < _pad(have, upper)[1]
        if not ok:
            return False
    return True


def requirement(text: str) -> tuple[str, str, str] | None:
    """"numpy (<2.0.0,>=1.21) ; python_version < '3.13'" -> ("numpy", "<2.0.0,>=1.21", marker)."""
    match = _REQ_RE.match(text)
    if not match:
        return None
    spec = (match.group(2) or match.group(3) or "").strip()
    return normalize(match.group(1)), spec, (match.group(4) or "").strip()
