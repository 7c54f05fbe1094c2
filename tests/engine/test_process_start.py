"""Process start of the command line: the batch fit imports only what it needs.

``scipy.stats`` (pulled in by the case, report and trial modules) costs seconds of start on a loaded
machine, more than a batch of small fits; ``fit --nonmem`` has no use for it. Each check runs a fresh
interpreter and inspects ``sys.modules``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO.parent / "shared" / "reference" / "nonmem-validation"


def loaded_modules(code: str, cwd: Path) -> set[str]:
    script = code + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_importing_the_command_line_does_not_import_scipy_stats(tmp_path: Path) -> None:
    modules = loaded_modules("import mipd_engine.__main__", tmp_path)
    assert "mipd_engine.__main__" in modules
    assert "scipy.stats" not in modules
    assert "mipd_engine.reports" not in modules and "mipd_engine.trial" not in modules


@pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"reference data not found at {REFERENCE}")
@pytest.mark.parametrize("run", ["run001", "run201"])  # the linear path and the ODE path
def test_a_batch_fit_runs_without_scipy_stats(tmp_path: Path, run: str) -> None:
    rows = (REFERENCE / run / "data.csv").read_text().splitlines()
    (tmp_path / "data.csv").write_text("\n".join([rows[0]] + [r for r in rows[1:] if r.split(",")[0] == "1"]))
    code = (
        "from mipd_engine.__main__ import main\n"
        f"assert main(['fit', '--model', {str(REFERENCE / run / 'model.json')!r}, '--nonmem', 'data.csv', "
        "'--output', 'out.csv']) == 0"
    )
    modules = loaded_modules(code, tmp_path)
    assert "mipd_engine.estimation" in modules
    assert "scipy.stats" not in modules
    assert (tmp_path / "out.csv").read_text().splitlines()[1].startswith("1,")
