"""The prediction log's spool: an append-only, bounded journal on local disk between a prediction's
answer and its row in the database.

- ``append`` is a group commit: requests hand in their records; whichever request finds no write in
  progress writes every waiting record in one ``write`` and one ``fdatasync``, and each waiting
  request returns once the group holding its records is on disk (True) or was refused (False).
- Records live in segment files ``<dir>/<host>-<pid>-<token>-<n>.spool``, one JSON line per record.
  A process holds an exclusive ``flock`` on each of its segments for as long as the segment exists,
  so a segment that can be locked by someone else belongs to a process that died: ``orphans`` finds
  them, and whoever locks one replays it (a killed process's records are never left behind, and two
  drainers never read the same segment).
- The drainer reads records back from the offset drained so far (kept beside the segment in
  ``<segment>.off`` once the database has them), ``advance``-s when they are written and deletes
  a segment it has read to the end once its writer has moved on.
- Bounded: records beyond ``max_bytes`` not yet drained, or a write the disk refuses (ENOSPC…), are
  lost, never half-written (the segment is truncated back to its last whole group), and every lost
  record is counted with its reason by the caller's ``on_lost``.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("apps.serving.log")
SUFFIX = ".spool"


@dataclass
class _Ticket:
    data: bytes
    meta: list  # one entry per record (what the caller needs to count a loss)
    done: bool = False
    ok: bool = False


@dataclass
class Segment:
    path: Path
    fd: int  # holds the flock (and, for our active segment, is the one written to)
    size: int = 0  # bytes on disk that are whole groups (durable)
    offset: int = 0  # bytes drained into the database
    mine: bool = True  # written by this process (False: an orphan taken over)
    closed: bool = False  # no more writes will come (rotated, or an orphan)
    meta: dict = field(default_factory=dict)

    @property
    def pending(self):
        return self.size - self.offset


class SpoolFull(Exception):
    pass


def _lock(fd):
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _read_offset(path: Path) -> int:
    try:
        return max(0, int((path.parent / (path.name + ".off")).read_text().strip() or 0))
    except (OSError, ValueError):
        return 0


class Spool:
    def __init__(self, directory, *, max_bytes=512 * 2**20, segment_bytes=16 * 2**20, on_lost=None):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes, self.segment_bytes = int(max_bytes), int(segment_bytes)
        self.on_lost = on_lost or (lambda meta, reason: None)
        self.prefix = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._n = 0
        self._cv = threading.Condition()
        self._pending: list[_Ticket] = []
        self._flushing = False
        self._segments: dict[str, Segment] = {}  # ours and orphans taken over, oldest first
        self._seg_lock = threading.Lock()
        self.active: Segment | None = None
        self.groups = self.records = 0

    # Writing ---------------------------------------------------------------------------------------

    def append(self, data: bytes, meta: list, *, wait=True):
        """Hand in ``data`` (whole JSON lines, one per entry of ``meta``). With ``wait``, returns True
        once they are on disk, False when they were lost (counted through ``on_lost``). Without, the
        next group (another request's, or ``sync``) writes them; returns None."""
        ticket = _Ticket(data, meta)
        with self._cv:
            self._pending.append(ticket)
            if not wait:
                return None
            while not ticket.done:
                if not self._flushing:
                    batch = self._take_group()
                    break
                self._cv.wait(1.0)
            else:
                return ticket.ok
        self._write_group(batch)
        return ticket.ok

    def sync(self):
        """Write whatever is waiting (records handed in without ``wait``)."""
        with self._cv:
            while self._flushing:
                self._cv.wait(1.0)
            if not self._pending:
                return
            batch = self._take_group()
        self._write_group(batch)

    def _take_group(self):
        batch, self._pending, self._flushing = self._pending, [], True
        return batch

    def _write_group(self, batch):
        try:
            self._write(batch)
        except Exception:
            log.exception("prediction log spool: a group could not be written")
            for t in batch:
                if not t.done:
                    t.done, t.ok = True, False
                    self.on_lost(t.meta, "spool error")
        finally:
            with self._cv:
                self._flushing = False
                self._cv.notify_all()

    def _write(self, batch):
        kept, room = [], self.max_bytes - self.pending_bytes()
        for t in batch:
            if len(t.data) <= room:
                kept.append(t)
                room -= len(t.data)
            else:
                t.done, t.ok = True, False
                self.on_lost(t.meta, "spool full")
        if not kept:
            return
        seg = self._writable()
        data = b"".join(t.data for t in kept)
        try:
            view, written = memoryview(data), 0
            while written < len(data):
                written += os.write(seg.fd, view[written:])
            os.fdatasync(seg.fd)
        except OSError as exc:
            reason = "disk full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else f"disk error ({exc.strerror})"
            log.error("prediction log spool: %d records lost: %s", sum(len(t.meta) for t in kept), exc)
            try:
                os.ftruncate(seg.fd, seg.size)  # never a half-written group
                os.lseek(seg.fd, seg.size, os.SEEK_SET)
            except OSError:
                log.exception("prediction log spool: could not truncate %s", seg.path)
            with self._seg_lock:
                seg.closed = True  # the next group starts a new segment; this one goes once drained
            for t in kept:
                t.done, t.ok = True, False
                self.on_lost(t.meta, reason)
            self.collect()
            return
        with self._seg_lock:
            seg.size += len(data)
        self.groups += 1
        self.records += sum(len(t.meta) for t in kept)
        for t in kept:
            t.done, t.ok = True, True

    def _writable(self) -> Segment:
        seg = self.active
        # A new segment when this one is full, was closed by a disk error, or is drained and big enough
        # that starting afresh gives its room back (the drained one is deleted).
        if seg is None or seg.closed or seg.size >= self.segment_bytes or (seg.pending <= 0 and seg.size >= 2**20):
            self._n += 1
            path = self.dir / f"{self.prefix}-{self._n:06d}{SUFFIX}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
            if not _lock(fd):  # cannot happen for a fresh name; refuse rather than share a segment
                os.close(fd)
                raise OSError(errno.EAGAIN, f"{path} is locked by another process")
            new = Segment(path=path, fd=fd)
            with self._seg_lock:
                if seg is not None:
                    seg.closed = True
                self._segments[path.name] = new
                self.active = new
            seg = new
            self.collect()
        return seg

    # Reading back (the drainer) --------------------------------------------------------------------

    def pending_bytes(self):
        with self._seg_lock:
            return sum(s.pending for s in self._segments.values())

    def adopt_orphans(self):
        """Take over the segments of processes that died (their lock is free). Returns how many."""
        taken = 0
        for path in sorted(self.dir.glob(f"*{SUFFIX}")):
            if path.name in self._segments or path.name.startswith(self.prefix + "-"):
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:  # drained and deleted by another process meanwhile
                continue
            if not _lock(fd):
                os.close(fd)  # its writer (or another drainer) is alive
                continue
            if not path.exists():
                os.close(fd)
                continue
            size = os.fstat(fd).st_size
            seg = Segment(path=path, fd=fd, size=size, offset=min(_read_offset(path), size), mine=False, closed=True)
            with self._seg_lock:
                self._segments[path.name] = seg
            taken += 1
            log.warning(
                "prediction log spool: replaying %s (%d bytes left by a process that stopped)", path.name, seg.pending
            )
        return taken

    def read(self, limit_records=256, block=2**20):
        """(segment, [record lines], end offset) of the oldest segment with records not drained,
        or (None, [], 0). Reads ``block`` bytes at a time until ``limit_records`` lines (a long
        backlog is never read whole for one batch). Only whole lines: a torn last line of an orphan
        (its writer killed mid-write, never acknowledged) is left unread and dropped with its segment."""
        with self._seg_lock:
            segs = [s for s in self._segments.values() if s.pending > 0]
        for seg in segs:
            lines, pos, chunk, left = [], 0, b"", seg.pending
            with open(seg.path, "rb") as fh:
                fh.seek(seg.offset)
                while len(lines) < limit_records:
                    nl = chunk.find(b"\n", pos)
                    if nl < 0:
                        more = fh.read(min(block, left)) if left > 0 else b""
                        if not more:
                            break
                        left -= len(more)
                        chunk, pos = chunk[pos:] + more, 0
                        continue
                    lines.append(chunk[pos:nl])
                    pos = nl + 1
            pos = sum(len(line) + 1 for line in lines)
            if lines:
                return seg, lines, seg.offset + pos
            if not seg.mine:  # an orphan ending in a torn line: nothing more will come
                with self._seg_lock:
                    seg.size = seg.offset
        return None, [], 0

    def advance(self, seg: Segment, offset: int):
        """The records of ``seg`` before ``offset`` are in the database."""
        with self._seg_lock:
            seg.offset = offset
        tmp = seg.path.parent / (seg.path.name + ".off.tmp")
        try:
            tmp.write_text(str(offset))
            os.replace(tmp, seg.path.parent / (seg.path.name + ".off"))
        except OSError as exc:  # the replay filters what the database already has
            log.warning("prediction log spool: could not record the drained offset of %s: %s", seg.path.name, exc)
        self.collect()

    def collect(self):
        """Delete the segments that are drained and will get no more writes."""
        with self._seg_lock:
            done = [s for s in self._segments.values() if s.closed and s.pending <= 0]
            for s in done:
                del self._segments[s.path.name]
        for s in done:
            for p in (s.path, s.path.parent / (s.path.name + ".off")):
                try:
                    p.unlink()
                except FileNotFoundError:
                    pass
            os.close(s.fd)  # the lock goes last: nobody can adopt a segment that is half deleted

    def close(self):
        """Let go of every segment (what is not drained stays on disk for the next process)."""
        self.sync()
        with self._seg_lock:
            segs, self._segments, self.active = list(self._segments.values()), {}, None
        for s in segs:
            if s.pending <= 0:
                for p in (s.path, s.path.parent / (s.path.name + ".off")):
                    try:
                        p.unlink()
                    except FileNotFoundError:
                        pass
            os.close(s.fd)

    def segments(self):
        with self._seg_lock:
            return list(self._segments.values())
