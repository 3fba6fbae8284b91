"""OpenVINO's runtime, imported without its model conversion API: every edgeclass module takes
OpenVINO from here (``from edgeclass.ovruntime import ov``).

``import openvino`` also imports ``openvino.tools.ovc`` (``convert_model``: the PyTorch, ONNX and
TensorFlow front-end glue, plus OpenVINO's telemetry client), which no command but ``convert`` and
``train`` uses: 0.13 s of a 0.29 s ``import openvino`` on this box (Zen 5), about all the start-up
that separated a one-image cron run from a minimal OpenVINO script. openvino's ``__init__`` imports
it inside ``try: ... except ImportError: pass``, so the runtime is complete without it; a ``None``
in ``sys.modules`` makes that one import fail at once (the import system's documented way to block
a module). The entry is removed again right after, so ``from openvino.tools.ovc import
convert_model`` (:mod:`edgeclass.model.export`, the one place that converts) imports it for real
when a command needs it; only the ``openvino.convert_model`` alias is missing then.

If OpenVINO was imported before this module (a caller's own ``import openvino``, or NNCF first),
nothing is blocked: the import already happened.
"""

from __future__ import annotations

import sys

_OVC = "openvino.tools.ovc"

if "openvino" not in sys.modules and _OVC not in sys.modules:
    sys.modules[_OVC] = None  # type: ignore[assignment]
    try:
        import openvino  # noqa: F401 - the package's __init__, with ovc's import failing fast
    finally:
        if sys.modules.get(_OVC, False) is None:
            del sys.modules[_OVC]

import openvino as ov  # noqa: E402

__all__ = ["ov"]
