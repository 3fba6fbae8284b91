"""Which x86 class this CPU is, as OpenVINO's CPU plugin will use it.

INT8 accuracy depends on the class. Without VNNI (Intel Core before Ice Lake, AMD before Zen 4,
Atom-class Celeron/Pentium J and N before Alder Lake-N) INT8 convolutions multiply-add through
``vpmaddubsw``/``pmaddubsw``, whose 16-bit sums saturate for 8-bit weights; with VNNI (or AMX)
they accumulate in 32 bits. On AVX512_BF16/AMX CPUs the plugin also runs float layers in bf16
unless told otherwise. So a model's recorded accuracy is only known to hold on the class it was
measured on, unless its weights avoid the saturation (NNCF's overflow fix: 7-bit weights).

The class is read from the CPU's flags (``/proc/cpuinfo``; NumPy's CPU feature table elsewhere)
and then capped as OpenVINO caps itself: OpenVINO 2026 honours a cap only when both
``OV_CPU_MAX_ISA`` and ``ONEDNN_MAX_CPU_ISA`` name the same ISA (docs/contributing.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from functools import lru_cache

# Our classes, best first: (name, the CPU flags it needs, VNNI, native bf16, what users call it)
_CLASSES: tuple[tuple[str, frozenset[str], bool, bool, str], ...] = (
    ("AVX512_CORE_AMX", frozenset({"avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8"}), True, True,
     "AVX-512 + AMX"),
    ("AVX512_CORE_BF16", frozenset({"avx512f", "avx512_vnni", "avx512_bf16"}), True, True, "AVX-512 + VNNI + BF16"),
    ("AVX512_CORE_VNNI", frozenset({"avx512f", "avx512_vnni"}), True, False, "AVX-512 + VNNI"),
    ("AVX512_CORE", frozenset({"avx512f", "avx512bw", "avx512vl"}), False, False, "AVX-512, no VNNI"),
    ("AVX2_VNNI", frozenset({"avx2", "avx_vnni"}), True, False, "AVX2 + AVX-VNNI"),
    ("AVX2", frozenset({"avx2"}), False, False, "AVX2, no VNNI"),
    ("AVX", frozenset({"avx"}), False, False, "AVX, no AVX2"),
    ("SSE41", frozenset(), False, False, "SSE4.1/4.2 only, no AVX"),
)
_NAMES = tuple(c[0] for c in _CLASSES)

# Which of our classes each cap admits (oneDNN's ISA masks: AVX2_VNNI is not a subset of the
# AVX-512 caps below AVX512_CORE_AMX's FP16 level, so those caps exclude it).
_UNDER_CAP: dict[str, frozenset[str]] = {
    "SSE41": frozenset({"SSE41"}),
    "AVX": frozenset({"SSE41", "AVX"}),
    "AVX2": frozenset({"SSE41", "AVX", "AVX2"}),
    "AVX2_VNNI": frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI"}),
    "AVX2_VNNI_2": frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI"}),
    "AVX512_CORE": frozenset({"SSE41", "AVX", "AVX2", "AVX512_CORE"}),
    "AVX512_CORE_VNNI": frozenset({"SSE41", "AVX", "AVX2", "AVX512_CORE", "AVX512_CORE_VNNI"}),
    "AVX512_CORE_BF16": frozenset({"SSE41", "AVX", "AVX2", "AVX512_CORE", "AVX512_CORE_VNNI", "AVX512_CORE_BF16"}),
    "AVX512_CORE_FP16": frozenset(_NAMES) - {"AVX512_CORE_AMX"},
    "AVX512_CORE_AMX": frozenset(_NAMES),
}


@dataclass(frozen=True)
class CpuClass:
    """One x86 class: ``name`` as OpenVINO spells ISAs, and what matters for accuracy."""

    name: str
    vnni: bool  # INT8 dot products accumulate in 32 bits (no 16-bit saturation)
    bf16: bool  # the plugin runs float layers in bf16 unless told f32
    label: str  # what users call it
    capped: str | None = None  # the OV_CPU_MAX_ISA/ONEDNN_MAX_CPU_ISA cap in force, if any
    cpu: str = ""  # the CPU's model name

    def describe(self) -> str:
        capped = f", capped to {self.capped}" if self.capped else ""
        return f"{self.label} ({self.cpu or 'unknown CPU'}{capped})"

    def as_record(self) -> dict[str, Any]:
        return {"class": self.name, "vnni": self.vnni, "bf16": self.bf16, "capped": self.capped, "cpu": self.cpu}

    @classmethod
    def from_record(cls, record: object) -> CpuClass | None:
        """A class as a model folder recorded it (:meth:`as_record`); None when not recorded."""
        if not isinstance(record, dict) or record.get("class") not in _NAMES:
            return None
        name, _, vnni, bf16, label = next(c for c in _CLASSES if c[0] == record["class"])
        return cls(name, bool(record.get("vnni", vnni)), bool(record.get("bf16", bf16)), label,
                   record.get("capped") or None, str(record.get("cpu") or ""))


def _cpu_flags() -> tuple[frozenset[str], str]:
    """The CPU's flags and model name: /proc/cpuinfo on Linux, else NumPy's feature table."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            flags, model = "", ""
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "flags" and not flags:
                    flags = value
                elif key == "model name" and not model:
                    model = value.strip()
                if flags and model:
                    break
        if flags:
            return frozenset(flags.split()), model
    except OSError:
        pass
    return _numpy_flags(), ""


def _numpy_flags() -> frozenset[str]:
    import importlib

    try:  # a private C module (no stub): the module's attributes are Any
        features = importlib.import_module("numpy._core._multiarray_umath").__cpu_features__
    except ImportError:  # NumPy < 2
        features = importlib.import_module("numpy.core._multiarray_umath").__cpu_features__
    names = {"AVX": "avx", "AVX2": "avx2", "AVX512F": "avx512f", "AVX512BW": "avx512bw", "AVX512VL": "avx512vl",
             "AVX512VNNI": "avx512_vnni", "AVX512BF16": "avx512_bf16", "AVXVNNI": "avx_vnni"}
    return frozenset(flag for key, flag in names.items() if features.get(key))


def active_cap(environ: dict[str, str] | os._Environ[str] = os.environ) -> str | None:
    """The ISA cap OpenVINO honours: both variables set to the same known value."""
    ov_cap = environ.get("OV_CPU_MAX_ISA", "").strip().upper()
    dnnl_cap = environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    return ov_cap if ov_cap and ov_cap == dnnl_cap and ov_cap in _UNDER_CAP else None


def classify(flags: frozenset[str], model: str = "", cap: str | None = None) -> CpuClass:
    """The best of our classes that ``flags`` support and ``cap`` admits."""
    allowed = _UNDER_CAP.get(cap, frozenset(_NAMES)) if cap else frozenset(_NAMES)
    for name, needs, vnni, bf16, label in _CLASSES:
        if name in allowed and needs <= flags:
            return CpuClass(name, vnni, bf16, label, cap, model)
    raise AssertionError("SSE41 needs no flags")  # pragma: no cover


@lru_cache(maxsize=1)
def detect() -> CpuClass:
    """This process's class (the environment's cap read once, as OpenVINO reads it)."""
    flags, model = _cpu_flags()
    return classify(flags, model, active_cap())
