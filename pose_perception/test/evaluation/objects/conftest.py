"""The fixtures and helpers of test/objects/ for the evaluation tests of the same area (tests mirror the package;
written by tools/split_runtime_eval.py)."""

import importlib.util
import sys
from pathlib import Path

_RUNTIME = Path(__file__).resolve().parents[2] / "objects"
sys.path.insert(0, str(_RUNTIME))
_spec = importlib.util.spec_from_file_location("_runtime_objects_conftest", _RUNTIME / "conftest.py")
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
globals().update({k: v for k, v in vars(_module).items() if not k.startswith("__")})
