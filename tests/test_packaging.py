"""checks/ and fixes/ live at the repository root but must install as tritondoctor.checks and
tritondoctor.fixes, never as top-level packages in site-packages (design card)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _source_copy(dest: Path) -> Path:
    """The project's sources in a private directory: building never writes into the tree under test."""
    ignore = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache")
    return Path(shutil.copytree(ROOT, dest, ignore=ignore))


def test_wheel_layout(tmp_path: Path) -> None:
    source = _source_copy(tmp_path / "src")
    out = tmp_path / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(source)],
                   check=True, capture_output=True, cwd=tmp_path)
    assert not (ROOT / "build").exists() or (ROOT / "build").stat().st_mtime < source.stat().st_mtime
    (wheel,) = out.glob("tritondoctor-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top_level == {"tritondoctor"}
    for module in (ROOT / "checks").glob("*.py"):
        assert f"tritondoctor/checks/{module.name}" in names
    for module in (ROOT / "fixes").glob("*.py"):
        assert f"tritondoctor/fixes/{module.name}" in names
    # Every module of every subpackage (a package missing from pyproject's list would be left out).
    for module in (ROOT / "tritondoctor").rglob("*.py"):
        rel = module.relative_to(ROOT).as_posix()
        assert rel in names, f"{rel} is not in the wheel: add its package to pyproject.toml"


def test_a_checkout_maps_checks_and_fixes_like_the_installed_layout() -> None:
    """`python -m tritondoctor` in the repository root imports the package from the checkout,
    shadowing an installed copy: checks/ and fixes/ must still be tritondoctor.checks / .fixes."""
    code = (
        "import sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]\n"
        "import tritondoctor.checks, tritondoctor.fixes, tritondoctor.registry as r\n"
        "print(tritondoctor.checks.__file__); print(tritondoctor.fixes.__file__); print(len(r.check_ids()))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    checks_file, fixes_file, count = proc.stdout.split()
    assert checks_file == str(ROOT / "checks" / "__init__.py")
    assert fixes_file == str(ROOT / "fixes" / "__init__.py")
    assert int(count) >= 15
