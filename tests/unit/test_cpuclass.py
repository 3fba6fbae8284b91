"""The CPU class edgeclass records and compares: from real CPUs' flags, under OpenVINO's caps,
and what `run` warns about (an INT8 model's accuracy measured on another class)."""

from __future__ import annotations

import pytest

from edgeclass.cpuclass import CpuClass, active_cap, classify
from edgeclass.modelfiles.provenance import Int8Provenance

# /proc/cpuinfo flags (the ones that matter) of CPUs in users' fleets
BASE = {"sse4_1", "sse4_2", "ssse3"}
CPUS = {
    "Celeron J4125 (Goldmont Plus)": (BASE, "SSE41", False),
    "Core i7-2600 (Sandy Bridge)": (BASE | {"avx"}, "AVX", False),
    "Core i5-8500 (Coffee Lake)": (BASE | {"avx", "avx2", "fma"}, "AVX2", False),
    "Ryzen 5 5600 (Zen 3)": (BASE | {"avx", "avx2", "fma"}, "AVX2", False),
    "Xeon Gold 6130 (Skylake-SP)": (BASE | {"avx", "avx2", "avx512f", "avx512bw", "avx512vl"}, "AVX512_CORE", False),
    "Xeon Gold 6230 (Cascade Lake)": (BASE | {"avx", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni"},
                                      "AVX512_CORE_VNNI", True),
    "N100 (Alder Lake-N)": (BASE | {"avx", "avx2", "avx_vnni"}, "AVX2_VNNI", True),
    "EPYC 9004 (Zen 4)": (BASE | {"avx", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16"},
                          "AVX512_CORE_BF16", True),
    "Xeon 4th gen (Sapphire Rapids)": (BASE | {"avx", "avx2", "avx_vnni", "avx512f", "avx512bw", "avx512vl",
                                               "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8"},
                                       "AVX512_CORE_AMX", True),
}
SPR = frozenset(CPUS["Xeon 4th gen (Sapphire Rapids)"][0])


@pytest.mark.parametrize("cpu", CPUS)
def test_real_cpus_get_their_class(cpu):
    flags, name, vnni = CPUS[cpu]
    c = classify(frozenset(flags), cpu)
    assert (c.name, c.vnni) == (name, vnni)
    assert c.bf16 == (name in ("AVX512_CORE_BF16", "AVX512_CORE_AMX"))


@pytest.mark.parametrize(("cap", "name", "vnni"), [
    ("AVX512_CORE_VNNI", "AVX512_CORE_VNNI", True),
    ("AVX512_CORE", "AVX512_CORE", False),  # AVX-VNNI is not under an AVX-512 cap without FP16
    ("AVX2", "AVX2", False),
    ("SSE41", "SSE41", False),
    ("AVX2_VNNI", "AVX2_VNNI", True),
])
def test_a_cap_lowers_the_class_as_openvino_does(cap, name, vnni):
    c = classify(SPR, "spr", cap)
    assert (c.name, c.vnni, c.bf16, c.capped) == (name, vnni, False, cap)
    assert f"capped to {cap}" in c.describe()


def test_a_cap_counts_only_with_both_variables_equal():
    # OpenVINO 2026 honours OV_CPU_MAX_ISA only together with ONEDNN_MAX_CPU_ISA
    assert active_cap({"OV_CPU_MAX_ISA": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}) == "AVX2"
    assert active_cap({"OV_CPU_MAX_ISA": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}) == "AVX2"
    assert active_cap({"OV_CPU_MAX_ISA": "AVX2"}) is None
    assert active_cap({"ONEDNN_MAX_CPU_ISA": "AVX2"}) is None
    assert active_cap({"OV_CPU_MAX_ISA": "AVX2", "ONEDNN_MAX_CPU_ISA": "SSE41"}) is None
    assert active_cap({"OV_CPU_MAX_ISA": "PENTIUM", "ONEDNN_MAX_CPU_ISA": "PENTIUM"}) is None


def _record(overflow_fix, measured_class=None):
    c = {"overflow_fix": overflow_fix, "target_cpu": {"enable": "any", "first_layer_only": "vnni"}.get(overflow_fix)}
    if measured_class:
        flags = frozenset(CPUS[measured_class][0])
        c["measured_on"] = classify(flags, measured_class).as_record()
    return Int8Provenance.from_calibration(c)


ZEN3 = classify(frozenset(CPUS["Ryzen 5 5600 (Zen 3)"][0]), "zen3")
ZEN4 = classify(frozenset(CPUS["EPYC 9004 (Zen 4)"][0]), "zen4")


def test_seven_bit_weights_hold_everywhere():
    p = _record("enable", "EPYC 9004 (Zen 4)")
    assert p.saturation_free and p.caveat(ZEN3) is None and p.caveat(ZEN4) is None
    assert "any x86 CPU" in p.made_for() and "AVX-512 + VNNI + BF16" in p.measured()


def test_eight_bit_weights_measured_with_vnni_are_not_established_without_it():
    p = _record("first_layer_only", "EPYC 9004 (Zen 4)")
    assert p.caveat(ZEN4) is None
    caveat = p.caveat(ZEN3)
    assert caveat and "AVX2, no VNNI" in caveat and "--target-cpu any" in caveat and "EPYC 9004" in caveat


def test_eight_bit_weights_measured_without_vnni_hold_there():
    assert _record("first_layer_only", "Ryzen 5 5600 (Zen 3)").caveat(ZEN3) is None


def test_a_model_from_before_the_record_still_runs_and_says_not_recorded():
    p = Int8Provenance.from_calibration({"images_used": 300, "method": "plain"})  # edgeclass 0.1.0's record
    assert p.measured() == "not recorded" and p.made_for().startswith("not recorded")
    assert p.caveat(ZEN4) is None
    assert "not recorded" in p.caveat(ZEN3)
    assert Int8Provenance.from_calibration(None).measured() == "not recorded"
    assert CpuClass.from_record({"class": "Z80"}) is None
    assert CpuClass.from_record(ZEN4.as_record()) == ZEN4  # what quantize records is what run reads back


def test_target_cpu_auto_follows_the_box_and_bad_values_are_refused(monkeypatch):
    from edgeclass import cpuclass
    from edgeclass.errors import CalibrationError
    from edgeclass.model.quantize import resolve_target_cpu

    for box, expected in ((ZEN4, "vnni"), (ZEN3, "any")):
        monkeypatch.setattr(cpuclass, "detect", lambda box=box: box)
        assert resolve_target_cpu("auto") == expected
        assert resolve_target_cpu("any") == "any" and resolve_target_cpu("vnni") == "vnni"
    with pytest.raises(CalibrationError, match="--target-cpu"):
        resolve_target_cpu("avx2")
