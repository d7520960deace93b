"""One remedy catalog: every remedy id that check, smoke, fix or explain can emit is declared in
tritondoctor.remedies.REMEDIES, and every fix module is one of them (read from the source with
ast, so a new FixHint id without a catalog entry fails here)."""

from __future__ import annotations

import ast
from pathlib import Path

from tritondoctor import remedies
from tritondoctor.fixes import all_fixes

ROOT = Path(__file__).resolve().parents[1]


def _literal_fix_ids() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for folder in ("checks", "fixes", "tritondoctor"):
        for path in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if name != "FixHint":
                    continue
                first = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "id"), None)
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found.setdefault(first.value, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_remedy_id_in_the_source_is_in_the_catalog() -> None:
    used = _literal_fix_ids()
    assert len(used) > 20  # the scan really found the checks' hints
    unknown = {k: v for k, v in used.items() if not remedies.known(k)}
    assert not unknown, f"remedy ids missing from tritondoctor.remedies.REMEDIES: {unknown}"


def test_every_fix_module_is_a_catalog_remedy() -> None:
    for spec in all_fixes():
        assert remedies.known(spec.id), spec.id
    for fix_id in remedies.HOOK_FIX_IDS.values():
        assert remedies.known(fix_id)
    assert remedies.known(remedies.NO_HOOKS_FIX_ID)


def test_check_and_smoke_name_the_same_remedy_for_the_same_problem() -> None:
    # These pairs drifted once (smoke said python-shared and cuda-driver); one id each now.
    used = _literal_fix_ids()
    assert "python-shared" not in used and "cuda-driver" not in used
    assert any(p.startswith("checks/libpython.py") for p in used["rebuild-python"])
    assert len([p for p in used["driver-mismatch"] if p.startswith("checks/cuda_driver.py")]) >= 2
