#!/usr/bin/env bash
# Run one command on this box's own CPU class, then again as each lower x86 class OpenVINO can
# emulate here, and say which passed. OpenVINO 2026 honours OV_CPU_MAX_ISA only together with
# ONEDNN_MAX_CPU_ISA set to the same value (docs/contributing.md); torch takes ATEN_CPU_CAPABILITY.
#   scripts/cpu-classes.sh python -m pytest tests/test_int8_gate.py
#   CLASSES="AVX2 SSE41" scripts/cpu-classes.sh ...   (the capped runs to make; default: every lower class)
set -u
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...]" >&2; exit 2; }
flags=" $(grep -m1 '^flags' /proc/cpuinfo) "
has() { case "$flags" in *" $1 "*) return 0;; esac; return 1; }
native="SSE41"; below=""
has avx2 && { native="AVX2"; below="SSE41"; }
has avx512f && { native="AVX512_CORE"; below="AVX2 SSE41"; }
has avx512_vnni && { native="AVX512_CORE_VNNI"; below="AVX512_CORE AVX2 SSE41"; }
below="${CLASSES:-$below}"
results=(); worst=0
echo "== native ($native)"
"$@"; rc=$?; results+=("native $native: exit $rc"); [ $rc -ne 0 ] && worst=$rc
for isa in $below; do
    torchcap=avx2; [ "$isa" = SSE41 ] && torchcap=default
    echo "== capped to $isa"
    OV_CPU_MAX_ISA=$isa ONEDNN_MAX_CPU_ISA=$isa ATEN_CPU_CAPABILITY=$torchcap "$@"; rc=$?
    results+=("capped $isa: exit $rc"); [ $rc -ne 0 ] && worst=$rc
done
echo "== summary"; printf '  %s\n' "${results[@]}"
exit $worst
