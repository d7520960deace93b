"""checks/ and fixes/ live at the repository root but must install as tritondoctor.checks and
tritondoctor.fixes, never as top-level packages in site-packages (design card)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_layout(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = tmp_path.glob("tritondoctor-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top_level == {"tritondoctor"}
    for module in (ROOT / "checks").glob("*.py"):
        assert f"tritondoctor/checks/{module.name}" in names
    for module in (ROOT / "fixes").glob("*.py"):
        assert f"tritondoctor/fixes/{module.name}" in names
    for package in ("facts", "smoke"):
        for module in (ROOT / "tritondoctor" / package).glob("*.py"):
            assert f"tritondoctor/{package}/{module.name}" in names


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
