"""Small bounded building blocks shared by the fact collectors: evidence pointers, samples, rates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from diag.read.clock import filetime_to_datetime

SAMPLES = 5
FILETIME_PER_SECOND = 10_000_000


def when(filetime: int | None) -> datetime | None:
    return filetime_to_datetime(filetime) if filetime else None


def iso(filetime: int | None) -> str | None:
    moment = when(filetime)
    return moment.isoformat() if moment else None


def pointer(record: Any, provider: str, event_id: int, **extra: Any) -> dict[str, Any]:
    """Where an event is in the file: its time, provider and id, buffer index and offset in it."""
    out = {"time": iso(record.filetime), "provider": provider, "event_id": event_id,
           "buffer": record.buffer_index, "offset": record.offset}
    out.update({k: v for k, v in extra.items() if v is not None})
    return out


def keep(samples: list, item: Any, limit: int = SAMPLES) -> None:
    """Append ``item`` while ``samples`` holds fewer than ``limit`` items (the first ones are kept)."""
    if len(samples) < limit:
        samples.append(item)


class Span:
    """First and last time of something, and how often it happened."""

    __slots__ = ("count", "first", "last")

    def __init__(self) -> None:
        self.count = 0
        self.first: int | None = None
        self.last: int | None = None

    def add(self, filetime: int | None, n: int = 1) -> None:
        self.count += n
        if filetime:
            if self.first is None or filetime < self.first:
                self.first = filetime
            if self.last is None or filetime > self.last:
                self.last = filetime


class RateSeries:
    """Event counts per time bucket, in bounded memory.

    Buckets start one second wide; when more than ``max_buckets`` are in use, neighbouring buckets
    are merged and the width doubles, so any trace length fits in ``max_buckets`` counters.
    """

    __slots__ = ("width", "buckets", "max_buckets", "total")

    def __init__(self, max_buckets: int = 4096) -> None:
        self.width = FILETIME_PER_SECOND
        self.buckets: dict[int, int] = {}
        self.max_buckets = max_buckets
        self.total = 0

    def add(self, filetime: int | None, n: int = 1) -> None:
        self.total += n
        if not filetime:
            return
        key = filetime // self.width
        self.buckets[key] = self.buckets.get(key, 0) + n
        if len(self.buckets) > self.max_buckets:
            self._coarsen()

    def _coarsen(self) -> None:
        merged: dict[int, int] = {}
        for key, n in self.buckets.items():
            merged[key // 2] = merged.get(key // 2, 0) + n
        self.buckets, self.width = merged, self.width * 2

    @property
    def bucket_seconds(self) -> float:
        return self.width / FILETIME_PER_SECOND

    def summary(self, points: int = 60) -> dict[str, Any]:
        """Peak and mean rate per second over the active span, and a downsampled series."""
        if not self.buckets:
            return {"active_seconds": 0.0, "peak_per_second": 0.0, "mean_per_second": 0.0,
                    "bucket_seconds": self.bucket_seconds, "series": []}
        first, last = min(self.buckets), max(self.buckets)
        span = last - first + 1
        seconds = span * self.bucket_seconds
        timed = sum(self.buckets.values())
        step = max(1, -(-span // points))
        series = [0] * (-(-span // step))
        for key, n in self.buckets.items():
            series[(key - first) // step] += n
        return {"active_seconds": seconds, "peak_per_second": max(self.buckets.values()) / self.bucket_seconds,
                "mean_per_second": round(timed / seconds, 3),  # a rate, shown to people: 3 decimals
                "bucket_seconds": self.bucket_seconds * step, "series": series}


class Bounded(dict):
    """A dict that stops taking new keys at ``limit``; ``overflow`` counts what was turned away."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.overflow = 0

    def slot(self, key: Any, factory: Any) -> Any:
        value = self.get(key)
        if value is None:
            if len(self) >= self.limit:
                self.overflow += 1
                return None
            value = self[key] = factory()
        return value


LIST_LIMIT = 64  # items of one list field of a fact (addresses, gateways, ports a segment is seen on...)


class Cuts:
    """What capped list fields of facts left out, counted: it ends up in the trace fact's ``not_kept``."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def cap(self, items: Any, limit: int = LIST_LIMIT) -> list:
        """The first ``limit`` of ``items`` as a list; the rest is counted."""
        items = list(items)
        if len(items) > limit:
            self.count += len(items) - limit
            del items[limit:]
        return items
