"""Keep the decoding libraries' own logging off stderr (cron mails whatever lands there).

Where each library writes, and how it is quieted (once, before the decode workers start; nothing
is toggled per image, so it is safe with any number of threads):

* OpenCV's logger (its ``[ WARN:...]``/``[ERROR:...]`` lines, libtiff's warnings and errors,
  which OpenCV's TIFF codec routes through it): log level SILENT, with ``OPENCV_LOG_LEVEL`` for an
  OpenCV not yet imported and ``cv2.utils.logging.setLogLevel`` for one already running.
* libpng and libjpeg inside OpenCV ("libpng warning: iCCP: ...", "Corrupt JPEG data: ..."), and
  libtiff inside Pillow ("LZMADecode: ..."): their default handlers ``fprintf`` to the C library's
  ``stderr`` stream, and OpenCV and Pillow install no handler of their own. Neither has an API to
  change that, so the process's C ``stderr`` *stream* (not file descriptor 2) is pointed at
  /dev/null. Python's own output (tracebacks, warnings, edgeclass's messages) goes through
  ``sys.stderr`` to descriptor 2 and is untouched, as is C++ ``std::cerr`` (bound to the stream
  at start-up). What it also hides: anything else that prints through C stdio, such as a Python
  fatal error's text (the exit status still tells). Done where the C library exports a writable
  ``stderr`` (glibc); elsewhere those lines stay.
* Pillow's Python warnings ("Truncated File Read", "Corrupt EXIF data"): a warnings filter.

A row's ``error`` says why a file failed in edgeclass's own words; ``--verbose`` leaves all of the
above alone, so the libraries' own lines show again.
"""

from __future__ import annotations

import ctypes
import os
import sys
import warnings

_original_c_stderr: int | None = None


def quiet_native_logging() -> None:
    """Silence OpenCV's logger, C-stdio stderr writes and Pillow's warnings for this process."""
    os.environ["OPENCV_LOG_LEVEL"] = "SILENT"  # read when OpenCV first logs
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    warnings.filterwarnings("ignore", module="PIL")
    _silence_c_stderr()


def _silence_c_stderr() -> None:
    global _original_c_stderr
    if _original_c_stderr is not None:
        return
    try:
        os.confstr("CS_GNU_LIBC_VERSION")  # glibc (musl's stderr is a const pointer)
    except (ValueError, OSError, AttributeError):
        return
    libc = ctypes.CDLL(None)  # the global scope: the `stderr` every loaded library uses
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    devnull = libc.fopen(os.devnull.encode(), b"w")
    if not devnull:
        return
    stream = ctypes.c_void_p.in_dll(libc, "stderr")
    _original_c_stderr = stream.value
    stream.value = devnull


def restore_c_stderr() -> None:
    """Point the C ``stderr`` stream back at descriptor 2 (tests; a process that keeps running)."""
    global _original_c_stderr
    if _original_c_stderr is None:
        return
    ctypes.c_void_p.in_dll(ctypes.CDLL(None), "stderr").value = _original_c_stderr
    _original_c_stderr = None
