"""Fault injection for `edgeclass` subprocesses started by tests/test_faults.py.

On the subprocess's PYTHONPATH this file is imported at start-up (Python's ``sitecustomize``
hook) and, when ``EDGECLASS_FAULT`` is set, wraps ``os.write``/``os.pwrite``/``os.replace``/
``os.open``. Nothing in edgeclass knows about it; the real code runs, and the real kernel
sees the fault.

``EDGECLASS_FAULT=<op>:<suffix>:<n>:<how>``: at the n-th (1-based) call of ``op`` on a file whose
name ends with ``suffix``:

* ``write``   + ``kill``: SIGKILL before writing; ``torn``: write the first half, then SIGKILL;
  ``enospc``: that write and every later one to the file fail with ENOSPC (a full disk).
* ``replace`` + ``kill``: SIGKILL just before renaming onto the file.
* ``link``    + ``kill``: SIGKILL just before hard-linking onto the file (``--move``'s last step
  before the original goes); ``unlink`` + ``kill``: SIGKILL just before removing the file.
* ``open``    + ``delete``: the file is deleted just before it is opened; ``swap``: its content is
  replaced by the file named in ``EDGECLASS_FAULT_DATA`` (a file replaced between listing and
  reading).
"""

import errno
import os
import signal
import shutil

_spec = os.environ.get("EDGECLASS_FAULT")
if _spec:
    _op, _suffix, _n, _how = _spec.split(":")
    _n = int(_n)
    _count = {"n": 0, "failing": False}

    def _name_of_fd(fd):
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return ""

    def _hit(name):
        if not str(name).endswith(_suffix):
            return False
        _count["n"] += 1
        return _count["n"] == _n

    def _die():
        os.kill(os.getpid(), signal.SIGKILL)

    if _op == "write":
        _real_write, _real_pwrite = os.write, os.pwrite

        def _fault(fd, data):
            if _count["failing"] and _name_of_fd(fd).endswith(_suffix):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            if not _hit(_name_of_fd(fd)):
                return False
            if _how == "kill":
                _die()
            if _how == "torn":
                return len(data) // 2
            _count["failing"] = True
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def write(fd, data):
            torn = _fault(fd, data)
            if torn is not False:
                _real_write(fd, bytes(data)[:torn])
                _die()
            return _real_write(fd, data)

        def pwrite(fd, data, offset):
            torn = _fault(fd, data)
            if torn is not False:
                _real_pwrite(fd, bytes(data)[:torn], offset)
                _die()
            return _real_pwrite(fd, data, offset)

        os.write, os.pwrite = write, pwrite

    elif _op in ("replace", "link", "unlink"):
        # SIGKILL just before the call that would touch the file: the target is the second
        # argument of os.replace/os.link (src, dst), the only one of os.unlink (path)
        _real = getattr(os, _op)

        def _kill_before(*args, **kw):
            if _hit(args[1] if _op != "unlink" else args[0]):
                _die()
            return _real(*args, **kw)

        setattr(os, _op, _kill_before)

    elif _op == "open":
        _real_open = os.open

        def open_(path, flags, *args, **kw):
            if _hit(path):
                if _how == "delete":
                    os.unlink(path)
                else:
                    shutil.copyfile(os.environ["EDGECLASS_FAULT_DATA"], path)
            return _real_open(path, flags, *args, **kw)

        os.open = open_

# ``EDGECLASS_TRACE=<file>``: append one line per os.fsync / os.replace (``fsync <path>``,
# ``replace <src> <dst>``) to <file>, to check the order the fsync policy promises.
_trace = os.environ.get("EDGECLASS_TRACE")
if _trace:
    _traced_fsync, _traced_replace = os.fsync, os.replace

    def _log(line):
        with open(_trace, "a", encoding="utf-8", errors="surrogateescape") as fh:
            fh.write(line + "\n")

    def fsync(fd):
        _traced_fsync(fd)
        try:
            name = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            name = "?"
        _log(f"fsync {name}")

    def replace(src, dst, **kw):
        _traced_replace(src, dst, **kw)
        _log(f"replace {os.path.basename(src)} {os.path.basename(dst)}")

    os.fsync, os.replace = fsync, replace
