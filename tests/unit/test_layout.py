"""The package's layout stays as README describes it: imports point one way, no cycle.

The contract lives in setup.cfg ([importlinter]) and is checked by import-linter; a copy of
the package with one deliberate upward import proves the check can fail.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "awscli_saml_sso"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter on the package found under `root`, with the project's contract."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "setup.cfg"), "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_import_contract_is_kept() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(PACKAGE, tmp_path / "awscli_saml_sso")
    shutil.copy(REPO / "setup.cfg", tmp_path / "setup.cfg")
    model = tmp_path / "awscli_saml_sso" / "model.py"
    model.write_text(model.read_text() + "\nfrom awscli_saml_sso import flow  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert "awscli_saml_sso.model -> awscli_saml_sso.flow" in result.stdout


#: The deferred imports of project modules: the console script loads the command line only
#: when its quick answers (a cached credential-process call, still valid, --version) do not
#: apply, and a run loads the browser capture (proxy, launchers, autofill) only to open one.
DEFERRED = {
    ("awscli_saml_sso/main.py", "awscli_saml_sso", ("cli",)),
    ("awscli_saml_sso/flow.py", "awscli_saml_sso.browser.capture", ("capture_assertion",)),
}


def test_project_modules_are_imported_at_the_top() -> None:
    """Only heavy third-party libraries are imported lazily, never the project's own modules
    (except for type checking, and the console script's DEFERRED command line)."""
    late = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith(
                    "awscli_saml_sso"
                ):
                    names = tuple(alias.name for alias in inner.names)
                    if (str(path.relative_to(REPO)), inner.module, names) in DEFERRED:
                        continue
                    late.append(f"{path.relative_to(REPO)}:{inner.lineno}")
    assert late == []
