"""Which pktmon snapshots are one packet, whatever numbering the build uses.

pktmon logs a snapshot of a packet at every component edge it crosses. How it numbers them
depends on the build, and the trace itself tells which numbering it has:

- **per packet** (up to Windows 11 23H2 / Server 2022; samples of builds 19042 and 20348): every
  snapshot of one packet carries the same (PktGroupId, PktNumber), and AppearanceCount counts the
  snapshots from 1. The digest keys a path by that pair.
- **per snapshot** (builds 26100 and 26200, Windows 11 24H2/25H2 and Server 2025; sample
  NeoChenjf__Finguard__PktMon.etl, build 26200): every snapshot gets a PktGroupId of its own,
  AppearanceCount stays 0, and the ids count up by one per snapshot on each processor (the upper 16
  bits hold the processor). A packet crossing the stack synchronously takes consecutive ids; an
  NBL chain handed on as one shares an id per component, its NBLs numbered by PktNumber; several
  packets in flight on one processor interleave (A, B, A, B...). ``SnapshotChains`` rebuilds the
  packets: a snapshot with AppearanceCount 0 joins the open chain of its processor whose last id
  is at most ``MAX_ID_GAP`` below its own, no more than ``HOP_WINDOW_SECONDS`` earlier, and whose
  packet has the same identity (``diag.decode.frames.identity``: what stays the same of a packet
  when its link header or IP header is rewritten on the way). On the sample the links are 1 to 15
  ids and at most 41 us apart; separate packets of the same content (TCP retries) 0.5 s apart.

The numbering is detected per snapshot (AppearanceCount 0 means per snapshot), never from a flag
the user passes. What could go wrong on a per-snapshot trace is counted, for the trace fact and
the quality gate: a snapshot that more than one open chain could take (two packets of the same
content in flight; the most recently opened takes it) is an *ambiguous* link. Content that changes on the way (NAT, an encapsulation the identity does not
see through, software segmentation) ends one path and starts another; nothing in the trace tells
such a break from a new packet, so every path of a per-snapshot trace is a rebuild.

Drops: the stack logs one dropped packet several times at one component (once per socket or
check that refused it: reasons 1204 twice then 918 for one loopback SYN in the sample). A drop
event of a packet already dropped at the same component is a *repeat*: it is counted with the
drop events, but it is not another packet and starts no path.
"""

from __future__ import annotations

from collections import deque
from typing import Callable

MAX_ID_GAP = 256
HOP_WINDOW_SECONDS = 0.010
SEQUENCE_MASK = (1 << 48) - 1

# an open chain: the digest's path, the last id (sequence part), the last raw timestamp, the hops it
# crossed (component, edge and direction), whether it ended with a drop (kept open for repeats), and
# the packet identity it is filed under
PATH, SEQ, TICKS, HOPS, ENDED, IDENT = range(6)


class SnapshotChains:
    """Open per-snapshot chains by processor and packet identity; ended ones go to ``end(path)``."""

    def __init__(self, ticks_per_second: int | None, end: Callable[[list], object]) -> None:
        self.max_ticks = int(ticks_per_second * HOP_WINDOW_SECONDS) if ticks_per_second else None
        self._end = end
        self._open: dict[tuple[int, bytes], list[list]] = {}  # (processor, identity) -> chains, oldest first
        self._by_cpu: dict[int, deque] = {}  # processor -> (id, identity) of each chain's updates, for expiry
        self.snapshots = 0  # snapshots numbered one by one (AppearanceCount 0)
        self.linked = 0  # of those, joined to the packet of an earlier snapshot
        self.ambiguous = 0  # joined one of several chains of the same content that could each have taken it
        self.opened = 0  # packets (chains) started
        self.repeats = 0  # drop events of a packet already dropped at that component

    def join(self, gid: int, ident: bytes, ticks: int | None, hop: int, dropped: bool) -> tuple[list | None, bool]:
        """The path this snapshot continues (None: it starts a packet), and whether it only repeats a drop.

        ``hop`` is the snapshot's component, edge and direction in one number. Of several open chains of this
        content, a dropped one that this drop repeats wins, then the most recently opened that has not crossed
        ``hop``. (One loop, no helper calls: this runs for every snapshot of a per-snapshot trace.)
        """
        self.snapshots += 1
        cpu, seq = gid >> 48, gid & SEQUENCE_MASK
        queue = self._by_cpu.get(cpu)
        if queue and queue[0][0] < seq - MAX_ID_GAP:
            self._expire(cpu, seq)
        chains = self._open.get((cpu, ident))
        if not chains:
            return None, False
        window = self.max_ticks if ticks is not None else None
        candidate, candidates = None, 0
        for entry in reversed(chains):
            gap = seq - entry[SEQ]
            if gap <= 0 or gap > MAX_ID_GAP:
                continue
            if window is not None and entry[TICKS] is not None and not -window <= ticks - entry[TICKS] <= window:
                continue
            if entry[ENDED]:
                if dropped and hop in entry[HOPS]:
                    self.repeats += 1
                    self._touch(entry, cpu, seq, ticks)
                    return entry[PATH], True
                continue
            if hop in entry[HOPS]:
                continue
            candidates += 1
            if candidate is None:
                candidate = entry
        if candidate is None:
            return None, False
        if candidates > 1:
            self.ambiguous += 1
        candidate[HOPS].add(hop)
        self._touch(candidate, cpu, seq, ticks)
        self.linked += 1
        return candidate[PATH], False

    def open(self, gid: int, ident: bytes, ticks: int | None, hop: int, path: list) -> None:
        """Start the chain of a packet whose first snapshot this is."""
        cpu, seq = gid >> 48, gid & SEQUENCE_MASK
        self.opened += 1
        entry = [path, seq, ticks, {hop}, False, ident]
        self._open.setdefault((cpu, ident), []).append(entry)
        self._by_cpu.setdefault(cpu, deque()).append((seq, ident))

    def ended(self, gid: int, ident: bytes, path: list) -> None:
        """The digest ended this chain's path (a drop, or too many hops): keep it only to absorb repeat drops."""
        for entry in self._open.get((gid >> 48, ident), ()):
            if entry[PATH] is path:
                entry[ENDED] = True

    def finish(self) -> None:
        for chains in self._open.values():
            for entry in chains:
                if not entry[ENDED]:
                    self._end(entry[PATH])
        self._open.clear()
        self._by_cpu.clear()

    def _touch(self, entry: list, cpu: int, seq: int, ticks: int | None) -> None:
        entry[SEQ] = seq
        if ticks is not None:
            entry[TICKS] = ticks
        self._by_cpu[cpu].append((seq, entry[IDENT]))

    def _expire(self, cpu: int, seq: int) -> None:
        """End the chains of ``cpu`` whose last id is more than ``MAX_ID_GAP`` behind ``seq``."""
        queue = self._by_cpu[cpu]
        floor = seq - MAX_ID_GAP
        opened, end, pop = self._open, self._end, queue.popleft
        while queue and queue[0][0] < floor:
            last_seq, ident = pop()
            chains = opened.get((cpu, ident))
            if not chains:
                continue
            for i in range(len(chains) - 1, -1, -1):
                entry = chains[i]
                if entry[SEQ] == last_seq:  # not touched since: its packet is over
                    del chains[i]
                    if not entry[ENDED]:
                        end(entry[PATH])
            if not chains:
                del opened[(cpu, ident)]


class RecentKeys:
    """Keys seen lately: ``new(key, when)`` is False for a key first seen less than ``window`` before.

    Times are in the caller's unit (FILETIME for drop events); a key without a time is always new,
    since nothing says it repeats. Bounded: past ``limit`` keys the oldest half is forgotten (trace
    order is not time order across processors, so age cannot be judged more finely).
    """

    def __init__(self, window: int, limit: int = 16384) -> None:
        self.window = window
        self.limit = limit
        self._first: dict = {}

    def new(self, key: object, when: int | None) -> bool:
        if when is None:
            return True
        first = self._first.get(key)
        if first is not None and -self.window <= when - first <= self.window:
            return False
        self._first[key] = when
        if len(self._first) > self.limit:
            for old in list(self._first)[:self.limit // 2]:
                del self._first[old]
        return True
