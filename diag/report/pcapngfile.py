"""A pcapng file written in time order, whatever order its packets arrive in, in bounded memory.

    f = PcapngFile(path)
    i = f.interface(key, linktype, name, description)
    f.packet(i, timestamp_100ns, frame, original_size, options)
    f.finish(comment)          # writes the file under a temporary name, then renames it into place
    f.discard()                # always: frees the spool

Layout of what ``finish`` writes: the section header, then every interface (IDB), then the packets
(EPB) sorted by timestamp, packets of one timestamp in the order they were given. Interfaces come
first because tools that rewrite a file block by block (reordercap) cannot place an IDB met between
packets. Why a sort at all: an ETL file holds one buffer per processor at a time, so records come
out of it in buffer order, and a later buffer of one processor can hold packets older than the last
buffer of another (minutes older on a real trace).

Memory: packets are held until ``run_bytes`` of blocks are pending, then sorted and appended to an
unnamed temporary file as one sorted run; ``finish`` merges the runs (a k-way merge that reads each
run through its own small window). A trace of any size needs ``run_bytes`` plus one window per run.
Timestamps are 100 ns units since 1970 (if_tsresol 7 on every interface).
"""

from __future__ import annotations

import heapq
import os
import struct
import tempfile
from collections.abc import Hashable, Iterator
from pathlib import Path

from diag.errors import BadInputError

__all__ = ["PcapngFile", "option"]

RUN_BYTES = 16 << 20
MERGE_MEMORY = 32 << 20  # split between the runs' read windows
_RUN_ENTRY = struct.Struct("<qI")  # timestamp, block length: what precedes each block in a spilled run
_EPB = struct.Struct("<IIIII")


def option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def block(block_type: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", block_type, length) + body + struct.pack("<I", length)


END_OF_OPTIONS = option(0, b"")


class PcapngFile:
    def __init__(self, out: Path, *, run_bytes: int = RUN_BYTES) -> None:
        self.out = out
        self.run_bytes = run_bytes
        self.packets = 0
        self.runs = 0  # sorted runs spilled to the spool (0: everything fitted in memory)
        self._interfaces: dict[Hashable, int] = {}
        self._idbs: list[bytes] = []
        self._pending: list[tuple[int, int, bytes]] = []  # (timestamp, arrival, block)
        self._pending_bytes = 0
        self._spool = None
        self._spans: list[tuple[int, int]] = []  # (offset, end) of each run in the spool

    @property
    def interfaces(self) -> int:
        return len(self._idbs)

    def interface(self, key: Hashable, linktype: int, name: str, description: str) -> int:
        """The interface id of ``key``, declared on first use."""
        found = self._interfaces.get(key)
        if found is not None:
            return found
        options = (option(2, name.encode()) + option(3, description.encode()) + option(9, bytes([7]))
                   + END_OF_OPTIONS)
        self._idbs.append(block(1, struct.pack("<HHI", linktype, 0, 0) + options))
        self._interfaces[key] = len(self._interfaces)
        return self._interfaces[key]

    def packet(self, interface: int, timestamp: int, frame: bytes, original_size: int, options: bytes) -> None:
        """One packet; ``options`` are encoded EPB options without the end-of-options marker."""
        body = (_EPB.pack(interface, (timestamp >> 32) & 0xFFFFFFFF, timestamp & 0xFFFFFFFF, len(frame),
                          max(original_size, len(frame)))
                + frame + b"\0" * (-len(frame) % 4) + options + END_OF_OPTIONS)
        epb = block(6, body)
        self._pending.append((timestamp, self.packets, epb))
        self.packets += 1
        self._pending_bytes += len(epb)
        if self._pending_bytes >= self.run_bytes:
            self._spill()

    def _spill(self) -> None:
        if not self._pending:
            return
        if self._spool is None:
            self._spool = tempfile.TemporaryFile()
        self._pending.sort(key=_order)
        start = self._spool.seek(0, os.SEEK_END)
        pack, write, batch = _RUN_ENTRY.pack, self._spool.write, []
        for ts, _arrival, epb in self._pending:
            batch.append(pack(ts, len(epb)))
            batch.append(epb)
            if len(batch) >= 8192:
                write(b"".join(batch))
                batch.clear()
        write(b"".join(batch))
        self._spans.append((start, self._spool.tell()))
        self.runs += 1
        self._pending.clear()
        self._pending_bytes = 0

    def _ordered(self) -> Iterator[bytes]:
        if self._spool is None:
            self._pending.sort(key=_order)
            return (epb for _ts, _arrival, epb in self._pending)
        self._spill()
        self._spool.flush()
        window = max(64 << 10, MERGE_MEMORY // len(self._spans))
        fd = self._spool.fileno()
        runs = [_read_run(fd, start, end, window) for start, end in self._spans]
        # heapq.merge keeps the runs' order for equal timestamps: runs were spilled in arrival order.
        return (epb for _ts, epb in heapq.merge(*runs, key=_first))

    def finish(self, comment: str, application: str) -> None:
        """Write the file: section header with ``comment``, interfaces, packets in time order."""
        shb = (struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + option(4, application.encode())
               + option(1, comment.encode()) + END_OF_OPTIONS)
        tmp = self.out.with_name(f".{self.out.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(block(0x0A0D0D0A, shb) + b"".join(self._idbs))
                batch: list[bytes] = []
                for epb in self._ordered():
                    batch.append(epb)
                    if len(batch) >= 4096:
                        fh.write(b"".join(batch))
                        batch.clear()
                fh.write(b"".join(batch))
            os.replace(tmp, self.out)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise BadInputError(f"cannot write the pcapng file ({exc.strerror or exc})", self.out) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def discard(self) -> None:
        self._pending.clear()
        if self._spool is not None:
            self._spool.close()
            self._spool = None


def _order(entry: tuple[int, int, bytes]) -> tuple[int, int]:
    return entry[0], entry[1]


def _first(entry: tuple[int, bytes]) -> int:
    return entry[0]


def _read_run(fd: int, start: int, end: int, window: int) -> Iterator[tuple[int, bytes]]:
    """(timestamp, block) of one spilled run, read about ``window`` bytes at a time."""
    buf, at, pos = b"", 0, start
    while True:
        stop = at + _RUN_ENTRY.size
        if stop <= len(buf):
            ts, length = _RUN_ENTRY.unpack_from(buf, at)
            stop += length
            if stop <= len(buf):
                yield ts, buf[at + _RUN_ENTRY.size:stop]
                at = stop
                continue
        if pos >= end:
            if at < len(buf):
                raise OSError("the pcapng spool file ends inside a block")
            return
        chunk = os.pread(fd, min(max(window, stop - len(buf)), end - pos), pos)
        if not chunk:
            raise OSError("the pcapng spool file is shorter than what was written to it")
        pos += len(chunk)
        buf, at = buf[at:] + chunk, 0
