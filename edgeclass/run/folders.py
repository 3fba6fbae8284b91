"""``--resume``: folders that need not be listed again.

At the end of a ``--resume`` run, each folder it listed is remembered in the journal (an ``F``
record: :class:`~edgeclass.run.journal.FolderRecord`) as *settled* when every input it held is
done and stays done while the folder is unchanged. A later run does not list a settled folder
whose device, inode, modification and change times (ns) are the same: adding, removing or
renaming an entry changes both times, so nothing new can be in it; only its known child folders
are stat'ed and walked. A folder is not settled (it is listed every run) when:

* an input in it has a row that a later run may redo without the folder changing: ``error``
  (every run), ``unreadable`` (when a chmod changes its ctime), ``missing``;
* the run was stopped (``--max-runtime``, SIGTERM) and it sent an input of it to be classified,
  or the run did not take every input of it;
* its mtime or ctime is within :data:`GRACE_NS` of the run's start: an entry added in the same
  clock tick as the listing, after it, would not change the times the record holds.

And a settled folder is listed all the same when ``--rescan`` is given, when this run's model is
not the one that settled it, under ``--redo-other-models`` when it holds rows of another model,
and once its record is older than :data:`FULL_PASS_EVERY_S`: a file replaced in place (same
name, new bytes, or only touched or chmod'ed) changes the file but not its folder, and is found
by that periodic full listing (docs/cron.md).
"""

from __future__ import annotations

import os
import time

from edgeclass.media.inputs import Listed
from edgeclass.run.journal import CTIME_STATUSES, FolderRecord

# FAT keeps times to 2 s (rounded either way), ext3, HFS+ and some SMB/NFS servers to 1 s, and a
# file server's clock may be a second or two off this box's: 5 s covers each of them with margin
# (EDGECLASS_FOLDER_GRACE_S: tests shorten it on a file system with nanosecond times)
GRACE_NS = int(float(os.environ.get("EDGECLASS_FOLDER_GRACE_S", "5")) * 1e9)
FULL_PASS_EVERY_S = float(os.environ.get("EDGECLASS_FULL_PASS_EVERY_S", "86400"))  # a day
UNSETTLED = frozenset({"error", "missing"}) | CTIME_STATUSES  # rows redone without the folder changing


class Folders:
    """One run's folder memory (a :class:`~edgeclass.media.inputs.FolderMemory`): the records of
    earlier runs, the folders this run lists, and what it skipped without listing."""

    def __init__(self, records: dict[str, FolderRecord], model: str, redo_other_models: bool = False,
                 rescan: bool = False, started_ns: int | None = None):
        self.records, self.model = records, model
        self.redo_other_models, self.rescan = redo_other_models, rescan
        self.started = time.time_ns() if started_ns is None else started_ns
        self.full_pass_ns = int(FULL_PASS_EVERY_S * 1e9)
        self.listed_folders: dict[str, Listed] = {}
        self.unlisted = self.skipped_inputs = self.skipped_other = 0  # folders not listed; their inputs

    # ------------------------------------------------------------------ the listing's thread
    def unchanged(self, ident: str, st: os.stat_result) -> tuple[str, ...] | None:
        r = self.records.get(ident)
        if r is None or self.rescan or not r.settled or r.model != self.model:
            return None
        if (r.dev, r.ino, r.mtime_ns, r.ctime_ns) != (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns):
            return None
        if (self.redo_other_models and r.other) or self.started - r.listed_at > self.full_pass_ns:
            return None
        self.unlisted += 1
        self.skipped_inputs += r.inputs
        self.skipped_other += r.other
        return r.children

    def listed(self, folder: Listed) -> None:
        self.listed_folders[folder.ident] = folder

    # ------------------------------------------------------------------ the run's thread
    def row(self, identity: str, status: str) -> None:
        """A row of the input ``identity`` was written with ``status``."""
        if status in UNSETTLED:
            folder = self.listed_folders.get(os.path.dirname(identity))
            if folder is not None:
                folder.unsettled = True

    def to_write(self, clean: bool) -> list[FolderRecord]:
        """The records this run leaves (``clean``: it finished): each folder it listed, settled or
        not; an unsettled one only when it overrides a settled record."""
        out = []
        for f in list(self.listed_folders.values()):  # a stopped run's listing may still be adding one
            st = f.stat
            settled = (f.taken and not f.unsettled and (clean or f.sent == 0)
                       and max(st.st_mtime_ns, st.st_ctime_ns) <= self.started - GRACE_NS)
            old = self.records.get(f.ident)
            if settled or (old is not None and old.settled):
                out.append(FolderRecord(f.ident, settled, self.started, self.model, st.st_dev, st.st_ino,
                                        st.st_mtime_ns, st.st_ctime_ns, f.inputs, f.other, tuple(f.children)))
        return out
