"""Which CPUs an INT8 model was made for and measured on, read from its calibration record.

``edgeclass quantize`` records, in the INT8 IR's metadata (``calibration``):

* ``target_cpu``: ``any`` (7-bit weights, NNCF's overflow fix on every layer: INT8 sums never
  saturate, so the model computes the same integers on every x86 class) or ``vnni`` (8-bit
  weights: exact only on CPUs with VNNI or AMX);
* ``overflow_fix``: NNCF's setting that follows from it;
* ``measured_on``: the CPU class the INT8 gate compiled and checked the model on.

Model folders from before these were recorded still run; their fields read ``None`` and are
shown as "not recorded".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgeclass.cpuclass import CpuClass

_EVERY_LAYER = "enable"  # NNCF OverflowFix.ENABLE

# --target-cpu: which CPUs an INT8 model is made for.
#   "any":  7-bit weights on every convolution and MatMul (NNCF's overflow fix), so the 16-bit
#           sums of CPUs without VNNI (AVX2, AVX-512 before Cascade Lake, SSE4) never saturate and
#           INT8 computes the same integers on every x86 class. The fleet-safe default.
#   "vnni": 8-bit weights (NNCF's default: the fix on the first layer only); saturates, and loses
#           accuracy, on CPUs without VNNI. Only for fleets where every box has VNNI or AMX.
#   "auto": "vnni" when this box has VNNI, else "any": for a model that stays on this box.
TARGET_CPUS = ("any", "vnni", "auto")


@dataclass(frozen=True)
class Int8Provenance:
    target_cpu: str | None
    overflow_fix: str | None
    measured_on: CpuClass | None

    @classmethod
    def from_calibration(cls, calibration: dict[str, Any] | None) -> Int8Provenance:
        c = calibration or {}
        return cls(c.get("target_cpu"), c.get("overflow_fix"), CpuClass.from_record(c.get("measured_on")))

    @property
    def saturation_free(self) -> bool:
        """7-bit weights everywhere: no 16-bit saturation on CPUs without VNNI."""
        return self.overflow_fix == _EVERY_LAYER

    def made_for(self) -> str:
        if self.overflow_fix is None:
            return "not recorded (8-bit weights: exact only on CPUs with VNNI or AMX)"
        if self.saturation_free:
            return "any x86 CPU (--target-cpu any: 7-bit weights, no INT8 saturation without VNNI)"
        return "CPUs with VNNI or AMX (--target-cpu vnni: 8-bit weights; CPUs without VNNI saturate)"

    def measured(self) -> str:
        return self.measured_on.describe() if self.measured_on else "not recorded"

    def caveat(self, here: CpuClass) -> str | None:
        """Why this model's recorded INT8 accuracy does not hold on ``here``, or None when it does.

        Only CPUs without VNNI change INT8's arithmetic (saturating 16-bit sums), and only for
        8-bit weights; a measurement made on such a CPU already includes it."""
        if self.saturation_free or here.vnni:
            return None
        if self.measured_on is not None and not self.measured_on.vnni:
            return None
        return (f"this INT8 model's accuracy was measured on {self.measured()}; on this CPU ({here.label}) its 8-bit "
                "weights can saturate INT8 sums, so that accuracy is not established here: quantize it again with "
                "`edgeclass quantize MODEL_DIR --target-cpu any` (exact on every x86 CPU), or run --precision fp32")
