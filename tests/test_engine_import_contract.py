"""mipd_engine is a pure library: importing it (and all its modules) pulls in no Django, DRF or Celery."""

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

IMPORT_ALL = """
import importlib, pkgutil, sys
import mipd_engine
for module in pkgutil.walk_packages(mipd_engine.__path__, "mipd_engine."):
    if not module.name.endswith("__main__"):
        importlib.import_module(module.name)
forbidden = ("django", "rest_framework", "celery", "drf_spectacular", "kombu")
loaded = sorted({name.split(".")[0] for name in sys.modules if name.split(".")[0] in forbidden})
print(",".join(loaded))
"""


def test_importing_mipd_engine_loads_no_web_framework() -> None:
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"mipd_engine pulled in: {result.stdout.strip()}"
