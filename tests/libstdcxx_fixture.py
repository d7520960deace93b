"""Build an "old" libstdc++.so.6 with gcc: the real library's version nodes, cut off at a
given GLIBCXX / CXXABI version (what conda's libstdcxx-ng 11 looks like to the loader).

The node list is read from this machine's real libstdc++.so.6, not typed in by hand.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tritondoctor.elf import ElfInfo, read_elf
from tritondoctor.gcc_abi import version_key
from tritondoctor.loader import LoaderEnv, search_library


def real_libstdcxx() -> Path:
    lib = search_library("libstdc++.so.6", LoaderEnv.from_system(environ={}))
    assert lib.path, "this machine has no libstdc++.so.6"
    return Path(lib.path)


def _kept(name: str, max_glibcxx: str, max_cxxabi: str) -> bool:
    key = version_key(name)
    if key is None:
        return True  # GLIBCXX_LDBL_*, CXXABI_TM_1, ...: keep as they are
    family, number = key
    limit = version_key(max_glibcxx if family == "GLIBCXX" else max_cxxabi)
    assert limit is not None
    return number <= limit[1]


def build_old_libstdcxx(dest: Path, max_glibcxx: str = "GLIBCXX_3.4.29", max_cxxabi: str = "CXXABI_1.3.13") -> Path:
    info = read_elf(str(real_libstdcxx()))
    assert isinstance(info, ElfInfo)
    nodes = [v for v in info.version_defs if _kept(v, max_glibcxx, max_cxxabi)]
    dest.mkdir(parents=True, exist_ok=True)
    source, script = dest / "oldstdcxx.c", dest / "oldstdcxx.map"
    source.write_text("".join(f"int tdx_node_{i}(void) {{ return {i}; }}\n" for i in range(len(nodes))))
    script.write_text("".join(
        f"{node} {{ global: tdx_node_{i}; {'local: *; ' if i == 0 else ''}}}{'' if i == 0 else ' ' + nodes[i - 1]};\n"
        for i, node in enumerate(nodes)
    ))
    out = dest / "libstdc++.so.6"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", str(out), str(source), "-Wl,-soname,libstdc++.so.6",
         f"-Wl,--version-script={script}"],
        check=True, capture_output=True,
    )
    return out
