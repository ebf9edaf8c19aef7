"""Turn record timestamps (in the file's clock) into UTC."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

_EPOCH_1601 = datetime(1601, 1, 1, tzinfo=timezone.utc)


def filetime_to_datetime(filetime: int) -> datetime | None:
    """FILETIME (100 ns ticks since 1601, UTC) to an aware datetime; None when out of range."""
    if filetime <= 0:
        return None
    try:
        return _EPOCH_1601 + timedelta(microseconds=filetime // 10)
    except OverflowError:
        return None


class TraceClock:
    """Converts raw record timestamps to FILETIME.

    The logfile header gives the start time as a FILETIME and, in its own record header, the same
    instant in the file's clock (QPC ticks, system time or CPU cycles): every other timestamp is
    an offset from that pair, scaled by the clock's frequency.
    """

    __slots__ = ("start_filetime", "reference_ticks", "ticks_per_second", "pointer_size")

    def __init__(self, start_filetime: int, reference_ticks: int, ticks_per_second: int, pointer_size: int) -> None:
        self.start_filetime = start_filetime
        self.reference_ticks = reference_ticks
        self.ticks_per_second = ticks_per_second or 10_000_000
        self.pointer_size = pointer_size

    def to_filetime(self, ticks: int) -> int:
        return self.start_filetime + (ticks - self.reference_ticks) * 10_000_000 // self.ticks_per_second

    @staticmethod
    def to_datetime(filetime: int) -> datetime | None:
        return filetime_to_datetime(filetime)
