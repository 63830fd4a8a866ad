"""The CPU check that runs before the native module loads.

oai's native code is built for x86-64-v3 (AVX2, FMA, BMI1/2, ...), the instruction-set class its
verifiable training logs are written in. On an older CPU loading it would die of an illegal
instruction; this check raises a clear ImportError instead. It asks the CPU itself (CPUID, via
a few bytes of machine code run through ctypes) and falls back to /proc/cpuinfo where
executable memory cannot be mapped.
"""

from __future__ import annotations

import ctypes
import mmap
import platform

# v1/v2/v3 features by (leaf, register index (eax=0, ebx=1, ecx=2, edx=3), bit)
_FEATURES = {
    "SSE3": (1, 2, 0),
    "SSSE3": (1, 2, 9),
    "FMA": (1, 2, 12),
    "CMPXCHG16B": (1, 2, 13),
    "SSE4.1": (1, 2, 19),
    "SSE4.2": (1, 2, 20),
    "MOVBE": (1, 2, 22),
    "POPCNT": (1, 2, 23),
    "XSAVE/OSXSAVE": (1, 2, 27),
    "AVX": (1, 2, 28),
    "F16C": (1, 2, 29),
    "BMI1": (7, 1, 3),
    "AVX2": (7, 1, 5),
    "BMI2": (7, 1, 8),
    "LZCNT": (0x80000001, 2, 5),
}
_PROC_FLAGS = {
    "SSE3": "pni", "SSSE3": "ssse3", "FMA": "fma", "CMPXCHG16B": "cx16", "SSE4.1": "sse4_1",
    "SSE4.2": "sse4_2", "MOVBE": "movbe", "POPCNT": "popcnt", "XSAVE/OSXSAVE": "xsave",
    "AVX": "avx", "F16C": "f16c", "BMI1": "bmi1", "AVX2": "avx2", "BMI2": "bmi2", "LZCNT": "abm",
}

# void cpuid(uint32_t leaf, uint32_t subleaf, uint32_t out[4])   (System V x86-64)
_CPUID = bytes.fromhex(
    "53"  # push rbx
    "89f8"  # mov eax, edi
    "89f1"  # mov ecx, esi
    "4989d0"  # mov r8, rdx
    "0fa2"  # cpuid
    "418900"  # mov [r8], eax
    "41895804"  # mov [r8+4], ebx
    "41894808"  # mov [r8+8], ecx
    "4189500c"  # mov [r8+12], edx
    "5b"  # pop rbx
    "c3"  # ret
)
# uint32_t xgetbv0(void): the low half of XCR0 (which register states the OS saves)
_XGETBV = bytes.fromhex("31c9" "0f01d0" "c3")


def _missing_by_cpuid() -> list[str]:
    page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    try:
        page.write(_CPUID + _XGETBV)
        base = ctypes.addressof(ctypes.c_char.from_buffer(page))
        cpuid = ctypes.CFUNCTYPE(None, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_void_p)(base)
        xgetbv = ctypes.CFUNCTYPE(ctypes.c_uint32)(base + len(_CPUID))
        regs = (ctypes.c_uint32 * 4)()

        def leaf(n: int) -> list[int]:
            cpuid(n, 0, ctypes.addressof(regs))
            return list(regs)

        max_basic = leaf(0)[0]
        max_ext = leaf(0x80000000)[0]
        got = {}
        for n in {l for l, _, _ in _FEATURES.values()}:
            available = n <= max_basic if n < 0x80000000 else n <= max_ext
            got[n] = leaf(n) if available else [0, 0, 0, 0]
        missing = [name for name, (n, r, b) in _FEATURES.items() if not (got[n][r] >> b) & 1]
        if "XSAVE/OSXSAVE" not in missing and (xgetbv() & 0b110) != 0b110:
            missing.append("OS support for AVX state (XCR0)")
        # keep ctypes' trampolines alive until the calls are done
        del cpuid, xgetbv
        return missing
    finally:
        try:
            page.close()
        except BufferError:
            pass


def _missing_by_proc() -> list[str]:
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
        for line in f:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return [name for name, flag in _PROC_FLAGS.items() if flag not in flags]
    return []


def check() -> None:
    """Raise ImportError when this CPU cannot run oai's x86-64-v3 native code."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return
    try:
        missing = _missing_by_cpuid()
    except (OSError, ValueError, TypeError, BufferError):
        try:
            missing = _missing_by_proc()
        except OSError:
            return
    if missing:
        raise ImportError(
            "oai needs an x86-64-v3 CPU (Haswell, 2013, or Zen 1 and later): this CPU lacks "
            + ", ".join(missing)
            + ". Its native code would stop with an illegal instruction, and the bits of "
            "verifiable training are defined for x86-64-v3 machines."
        )
