"""Real ELF fixtures built with gcc in a temporary directory (nothing binary is committed).

`Fixtures(root)` builds small shared objects and executables whose dynamic sections say exactly
what a loader rule needs: DT_NEEDED names in order, DT_RPATH or DT_RUNPATH, DT_FLAGS_1,
DT_AUXILIARY / DT_FILTER, symbol versions. A DT_NEEDED name is produced by linking against a
*stub* with that soname in a directory no search ever sees, so a name can be needed without any
file of that name existing where the loader looks.

Decoys: `wrong_class` (a 32-bit ELF, from `gcc -m32` or else a 64-bit file with EI_CLASS
patched: the loader checks the class byte before anything else), `wrong_machine` (e_machine
patched), `not_elf` (text). `old_libstdcxx` builds a libstdc++.so.6 whose version nodes are the
real library's (read with pyelftools), cut off at a given GLIBCXX / CXXABI version.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Iterable, Sequence

GCC = shutil.which("gcc")


def _gcc() -> str:
    if GCC is None:
        raise RuntimeError("gcc is needed to build ELF fixtures")
    return GCC
SYSTEM_LIBSTDCXX = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"
EM_AARCH64 = 183


def have_gcc() -> bool:
    return GCC is not None


def _run(cmd: Sequence[str], cwd: Path) -> None:
    proc = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")


@functools.lru_cache(maxsize=1)
def gcc_can_build_32bit() -> bool:
    """`gcc -m32 -shared -nostdlib` needs no 32-bit libc, only the compiler's i386 target."""
    if GCC is None:
        return False
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    probe = tmp / f".tdx-m32-probe-{os.getpid()}"
    probe.mkdir(exist_ok=True)
    try:
        (probe / "a.c").write_text("int tdx_probe(void) { return 32; }\n")
        proc = subprocess.run(
            [_gcc(), "-m32", "-shared", "-nostdlib", "-fPIC", "-o", "a.so", "a.c"], cwd=probe, capture_output=True
        )
        return proc.returncode == 0 and (probe / "a.so").read_bytes()[4:5] == b"\x01"
    finally:
        shutil.rmtree(probe, ignore_errors=True)


def _ident(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


class Fixtures:
    """Builds fixtures under `root`; paths given to its methods are relative to `root`."""

    def __init__(self, root: Path) -> None:
        if GCC is None:
            raise RuntimeError("gcc is needed to build ELF fixtures")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._stubs = self.root / ".stubs"
        self._count = 0

    # -- helpers -------------------------------------------------------------------------------

    def path(self, rel: str | Path) -> Path:
        return self.root / rel

    def mkdir(self, rel: str | Path) -> Path:
        p = self.path(rel)
        p.mkdir(parents=True, exist_ok=True)
        return p

    def _source(self, text: str, suffix: str = ".c") -> Path:
        self._count += 1
        src = self._stubs / f"src{self._count}{suffix}"
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_text(text)
        return src

    def _stub(self, soname: str) -> Path:
        """An empty shared object with this soname, to link against: the linker writes the
        soname of what it links into DT_NEEDED."""
        stub = self._stubs / "by-soname" / _ident(soname) / "stub.so"
        if not stub.exists():
            stub.parent.mkdir(parents=True, exist_ok=True)
            src = self._source(f"int tdx_stub_{_ident(soname)}(void) {{ return 0; }}\n")
            _run([_gcc(), "-shared", "-fPIC", "-nostdlib", f"-Wl,-soname,{soname}", "-o", str(stub), str(src)], self.root)
        return stub

    def _link_args(
        self,
        needed: Sequence[str],
        rpath: Sequence[str] | None,
        runpath: Sequence[str] | None,
    ) -> list[str]:
        args = ["-Wl,--no-as-needed"]
        for name in needed:
            # A name with a slash goes on the command line as it is (relative to root): a
            # dependency without a soname is recorded under the path it was linked by.
            args.append(name if "/" in name else str(self._stub(name)))
        if rpath is not None and runpath is not None:
            raise ValueError("one object has DT_RPATH or DT_RUNPATH, not both")
        if rpath is not None:
            args += ["-Wl,--disable-new-dtags", f"-Wl,-rpath,{':'.join(rpath)}"]
        if runpath is not None:
            args += ["-Wl,--enable-new-dtags", f"-Wl,-rpath,{':'.join(runpath)}"]
        return args

    # -- builders ------------------------------------------------------------------------------

    def lib(
        self,
        rel: str | Path,
        *,
        soname: str | None = "",
        needed: Sequence[str] = (),
        rpath: Sequence[str] | None = None,
        runpath: Sequence[str] | None = None,
        flags: Sequence[str] = (),
        source: str | None = None,
        nostdlib: bool = False,
    ) -> Path:
        """A shared object at root/rel. soname "" (default): the file's basename; None: none."""
        out = self.path(rel)
        out.parent.mkdir(parents=True, exist_ok=True)
        soname = out.name if soname == "" else soname
        src = self._source(source or f"int tdx_{_ident(out.name)}(void) {{ return {self._count}; }}\n")
        cmd = [_gcc(), "-shared", "-fPIC", "-o", str(out), str(src)]
        if nostdlib:
            cmd.append("-nostdlib")
        if soname is not None:
            cmd.append(f"-Wl,-soname,{soname}")
        cmd += self._link_args(needed, rpath, runpath) + list(flags)
        _run(cmd, self.root)
        return out

    def exe(
        self,
        rel: str | Path,
        *,
        needed: Sequence[str] = (),
        rpath: Sequence[str] | None = None,
        runpath: Sequence[str] | None = None,
        flags: Sequence[str] = (),
    ) -> Path:
        """A PIE executable at root/rel (main does nothing; no symbol of a dependency is used)."""
        out = self.path(rel)
        out.parent.mkdir(parents=True, exist_ok=True)
        src = self._source("int main(void) { return 0; }\n")
        cmd = [_gcc(), "-o", str(out), str(src)] + self._link_args(needed, rpath, runpath) + list(flags)
        _run(cmd, self.root)
        return out

    def versioned_lib(
        self,
        rel: str | Path,
        nodes: Sequence[str],
        *,
        soname: str | None = "",
        needed: Sequence[str] = (),
    ) -> Path:
        """A shared object defining the symbol-version nodes `nodes` (a chain, each inheriting
        the previous one), one function per node."""
        out = self.path(rel)
        soname = out.name if soname == "" else soname
        body = "".join(f"int tdx_node_{i}(void) {{ return {i}; }}\n" for i in range(len(nodes)))
        script_lines = []
        for i, node in enumerate(nodes):
            local = "local: *; " if i == 0 else ""
            parent = f" {nodes[i - 1]}" if i else ""
            script_lines.append(f"{node} {{ global: tdx_node_{i}; {local}}}{parent};\n")
        self._count += 1
        script = self._stubs / f"vers{self._count}.map"
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text("".join(script_lines))
        return self.lib(rel, soname=soname, needed=needed, source=body, flags=[f"-Wl,--version-script={script}"])

    def needing_versions(
        self,
        rel: str | Path,
        provider: Path,
        versions: Sequence[str],
        *,
        kind: str = "lib",
        needed: Sequence[str] = (),
        rpath: Sequence[str] | None = None,
    ) -> Path:
        """An object (lib or exe) that references one symbol of each of `versions` in
        `provider` (built by `versioned_lib`): its .gnu.version_r then needs exactly those."""
        nodes = _version_nodes(provider)
        decls = []
        calls = []
        for version in versions:
            i = nodes.index(version)
            decls.append(f"int tdx_node_{i}(void);\n")
            calls.append(f"tdx_node_{i}()")
        fn = "main" if kind == "exe" else f"tdx_use_{_ident(Path(rel).name)}"
        src = self._source("".join(decls) + f"int {fn}(void) {{ return {' + '.join(calls) or '0'}; }}\n")
        out = self.path(rel)
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [_gcc(), "-o", str(out), str(src)] + (["-shared", "-fPIC"] if kind == "lib" else [])
        if kind == "lib":
            cmd.append(f"-Wl,-soname,{out.name}")
        cmd += self._link_args(needed, rpath, None) + [str(provider)]
        _run(cmd, self.root)
        return out

    # -- decoys --------------------------------------------------------------------------------

    def wrong_class(self, rel: str | Path) -> Path:
        """A 32-bit (ELFCLASS32) shared object at root/rel, soname = its basename."""
        out = self.path(rel)
        out.parent.mkdir(parents=True, exist_ok=True)
        if gcc_can_build_32bit():
            src = self._source("int tdx_thirty_two(void) { return 32; }\n")
            _run([_gcc(), "-m32", "-shared", "-nostdlib", "-fPIC", f"-Wl,-soname,{out.name}", "-o", str(out), str(src)],
                 self.root)
        else:
            data = bytearray(self.lib(str(rel) + ".64", soname=out.name, nostdlib=True).read_bytes())
            data[4] = 1  # EI_CLASS = ELFCLASS32: open_verify's "found other class", checked first
            out.write_bytes(bytes(data))
        assert out.read_bytes()[4] == 1
        return out

    def wrong_machine(self, rel: str | Path) -> Path:
        """A 64-bit little-endian shared object whose e_machine says AArch64."""
        out = self.path(rel)
        data = bytearray(self.lib(str(rel) + ".x86", soname=out.name, nostdlib=True).read_bytes())
        data[18:20] = EM_AARCH64.to_bytes(2, "little")
        out.write_bytes(bytes(data))
        return out

    def not_elf(self, rel: str | Path, text: str = "not an ELF file, but longer than an ELF header\n" * 4) -> Path:
        out = self.path(rel)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        return out

    def old_libstdcxx(
        self, rel: str | Path, max_glibcxx: str = "GLIBCXX_3.4.29", max_cxxabi: str = "CXXABI_1.3.13"
    ) -> tuple[Path, list[str]]:
        """libstdc++.so.6 at root/rel with the real library's version nodes up to the given
        GLIBCXX and CXXABI versions (other families, e.g. GLIBCXX_LDBL_*, CXXABI_TM_1, kept).
        Returns the file and the nodes it defines."""
        real = _version_nodes(Path(SYSTEM_LIBSTDCXX))
        nodes = [n for n in real if _at_most(n, max_glibcxx, max_cxxabi)]
        out = self.versioned_lib(rel, nodes, soname="libstdc++.so.6")
        return out, nodes


_NUMBERED = re.compile(r"^(GLIBCXX|CXXABI)_(\d+(?:\.\d+)*)$")


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


def _at_most(node: str, max_glibcxx: str, max_cxxabi: str) -> bool:
    m = _NUMBERED.match(node)
    if not m:
        return True
    limit = _NUMBERED.match(max_glibcxx if m[1] == "GLIBCXX" else max_cxxabi)
    assert limit is not None
    return _numbers(m[2]) <= _numbers(limit[2])


def _version_nodes(path: Path) -> list[str]:
    """Names defined by .gnu.version_d, the base (file name) entry excluded, read with pyelftools
    directly (not through the module under test)."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.gnuversions import GNUVerDefSection

    names: list[str] = []
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        for section in elf.iter_sections():
            if isinstance(section, GNUVerDefSection):
                for verdef, auxiliaries in section.iter_versions():
                    if verdef["vd_flags"] & 0x1:  # VER_FLG_BASE
                        continue
                    names.append(next(iter(auxiliaries)).name)
    return names


def version_needs(path: Path) -> dict[str, list[str]]:
    """{file named in .gnu.version_r: [versions needed from it]}, read with pyelftools."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.gnuversions import GNUVerNeedSection

    out: dict[str, list[str]] = {}
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        for section in elf.iter_sections():
            if isinstance(section, GNUVerNeedSection):
                for verneed, auxiliaries in section.iter_versions():
                    out.setdefault(str(verneed.name), []).extend(str(aux.name) for aux in auxiliaries)
    return out


def mark_version_need_weak(path: Path, version: str) -> None:
    """Set VER_FLG_WEAK on the .gnu.version_r entry for `version` (GNU ld sets it only in cases
    hard to produce on purpose): ld.so then accepts a provider that lacks the version."""
    import struct

    from elftools.elf.elffile import ELFFile

    data = bytearray(path.read_bytes())
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        section = elf.get_section_by_name(".gnu.version_r")
        strtab = elf.get_section_by_name(".dynstr")
        assert section is not None and strtab is not None
        offset, strings = section["sh_offset"], strtab["sh_offset"]
    hits = 0
    while True:
        _, cnt, _, aux, nxt = struct.unpack_from("<HHIII", data, offset)
        at = offset + aux
        for _ in range(cnt):
            _, flags, _, name, aux_next = struct.unpack_from("<IHHII", data, at)
            end = data.index(b"\0", strings + name)
            if data[strings + name : end].decode() == version:
                struct.pack_into("<H", data, at + 4, flags | 0x2)
                hits += 1
            at += aux_next
        if not nxt:
            break
        offset += nxt
    assert hits, f"{path} needs no version {version}"
    path.write_bytes(bytes(data))


def copy_into(files: Iterable[str | Path], directory: Path, symlink: bool = False) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for f in files:
        dest = directory / Path(f).name
        if symlink:
            dest.symlink_to(f)
        else:
            shutil.copy2(f, dest)
        out.append(dest)
    return out
