"""edgeclass.ovruntime: OpenVINO's runtime without its conversion API, and conversion still there
when a command needs it. Each case in a fresh interpreter (what is imported is the point)."""

from __future__ import annotations

import subprocess
import sys

LOADED = ("import sys\n"
          "def loaded(prefix):\n"
          "    return any(m == prefix or m.startswith(prefix + '.') for m in sys.modules)\n")


def _python(code: str) -> str:
    r = subprocess.run([sys.executable, "-c", LOADED + code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_the_runtime_comes_without_ovc_and_its_telemetry_and_infers():
    out = _python(
        "from edgeclass.ovruntime import ov\n"
        "import numpy as np\n"
        "from openvino import opset13 as ops\n"
        "x = ops.parameter([1, 3], ov.Type.f32)\n"
        "compiled = ov.Core().compile_model(ov.Model([ops.softmax(x, 1)], [x]), 'CPU')\n"
        "p = compiled(np.log(np.array([[1.0, 2.0, 5.0]], np.float32)))[0]\n"
        "print(loaded('openvino.tools.ovc'), loaded('openvino_telemetry'), hasattr(ov, 'convert_model'),\n"
        "      ' '.join(f'{v:.4f}' for v in p[0]), 'openvino.tools.ovc' in sys.modules)\n")
    assert out == ["False", "False", "False", "0.1250", "0.2500", "0.6250", "False"]


def test_conversion_still_works_after_the_runtime_was_imported_first():
    """The convert path (edgeclass.model.export) imports ovc itself: a torch model converts, and
    the IR (with the embedded BGR->RGB, /255, softmax) gives torch's probabilities."""
    out = _python(
        "from edgeclass.ovruntime import ov\n"
        "import numpy as np, torch\n"
        "from edgeclass.model.export import torch_to_ov\n"
        "from edgeclass.modelfiles.preprocessing import PreprocessConfig\n"
        "torch.manual_seed(0)\n"
        "net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()\n"
        "model = torch_to_ov(net, PreprocessConfig(input_size=(32, 32)))\n"
        "bgr = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)\n"
        "got = ov.Core().compile_model(model, 'CPU', {'INFERENCE_PRECISION_HINT': 'f32'})(bgr)[0]\n"
        "rgb = torch.from_numpy(bgr[..., ::-1].copy()).permute(0, 3, 1, 2).float() / 255.0\n"
        "want = torch.softmax(net(rgb), 1).detach().numpy()\n"
        "print(loaded('openvino.tools.ovc'), got.shape, float(np.abs(got - want).max()) < 1e-5,\n"
        "      (got.argmax(1) == want.argmax(1)).all())\n")
    assert out == ["True", "(2,", "4)", "True", "True"]


def test_an_openvino_imported_before_is_left_whole():
    out = _python("import openvino\nfrom edgeclass.ovruntime import ov\n"
                  "print(ov is openvino, hasattr(ov, 'convert_model'), loaded('openvino.tools.ovc'))\n")
    assert out == ["True", "True", "True"]
