"""Which GCC release first shipped a libstdc++ symbol version.

From the "Symbol versioning" history in the libstdc++ manual (doc/xml/manual/abi.xml): each
line there reads "GCC x.y.z: GLIBCXX_3.4.N, CXXABI_1.3.M", labels cumulative. conda-forge's
libstdcxx-ng / libstdcxx packages carry the GCC version as their version.
"""

from __future__ import annotations

import re

# (GCC release, highest GLIBCXX, highest CXXABI) in release order.
RELEASES: tuple[tuple[str, str, str], ...] = (
    ("4.9.0", "GLIBCXX_3.4.20", "CXXABI_1.3.8"),
    ("5.1.0", "GLIBCXX_3.4.21", "CXXABI_1.3.9"),
    ("6.1.0", "GLIBCXX_3.4.22", "CXXABI_1.3.10"),
    ("7.1.0", "GLIBCXX_3.4.23", "CXXABI_1.3.11"),
    ("7.2.0", "GLIBCXX_3.4.24", "CXXABI_1.3.11"),
    ("8.1.0", "GLIBCXX_3.4.25", "CXXABI_1.3.11"),
    ("9.1.0", "GLIBCXX_3.4.26", "CXXABI_1.3.12"),
    ("9.2.0", "GLIBCXX_3.4.27", "CXXABI_1.3.12"),
    ("9.3.0", "GLIBCXX_3.4.28", "CXXABI_1.3.12"),
    ("11.1.0", "GLIBCXX_3.4.29", "CXXABI_1.3.13"),
    ("12.1.0", "GLIBCXX_3.4.30", "CXXABI_1.3.13"),
    ("13.1.0", "GLIBCXX_3.4.31", "CXXABI_1.3.14"),
    ("13.2.0", "GLIBCXX_3.4.32", "CXXABI_1.3.14"),
    ("14.1.0", "GLIBCXX_3.4.33", "CXXABI_1.3.15"),
)

_VERSION = re.compile(r"^(GLIBCXX|CXXABI)_(\d+(?:\.\d+)*)$")


def version_key(name: str) -> tuple[str, tuple[int, ...]] | None:
    match = _VERSION.match(name)
    if not match:
        return None
    return match.group(1), tuple(int(p) for p in match.group(2).split("."))


def is_libstdcxx_version(name: str) -> bool:
    return version_key(name) is not None


def minimum_gcc(versions: list[str] | tuple[str, ...] | set[str]) -> str | None:
    """The first GCC release whose libstdc++ defines every one of `versions`; None if even the
    newest release known here does not (or none of them is a GLIBCXX/CXXABI version)."""
    needed = [k for k in (version_key(v) for v in versions) if k is not None]
    if not needed:
        return None
    for gcc, glibcxx, cxxabi in RELEASES:
        provided = {"GLIBCXX": version_key(glibcxx)[1], "CXXABI": version_key(cxxabi)[1]}  # type: ignore[index]
        if all(number <= provided[family] for family, number in needed):
            return gcc
    return None


def conda_spec(gcc: str) -> str:
    """The libstdcxx-ng requirement for a GCC release: 12.1.0 -> "12", 13.2.0 -> "13.2"."""
    major, minor, _ = (gcc.split(".") + ["0", "0"])[:3]
    return major if minor == "1" or minor == "0" else f"{major}.{minor}"
