"""Turn record timestamps (in the file's clock) into UTC."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

_EPOCH_1601 = datetime(1601, 1, 1, tzinfo=timezone.utc)
# The last FILETIME a datetime can hold (9999-12-31). A record stamped later is damaged: its time is unknown.
MAX_FILETIME = (datetime(9999, 12, 31, tzinfo=timezone.utc) - _EPOCH_1601) // timedelta(microseconds=1) * 10


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

    __slots__ = ("start_filetime", "reference_ticks", "ticks_per_second", "pointer_size", "raw_min", "raw_max")

    def __init__(self, start_filetime: int, reference_ticks: int, ticks_per_second: int, pointer_size: int) -> None:
        self.start_filetime = start_filetime
        self.reference_ticks = reference_ticks
        self.ticks_per_second = frequency = ticks_per_second or 10_000_000
        self.pointer_size = pointer_size
        # The raw timestamps that convert to a date between 1601 and 9999: outside them a record is
        # damaged, and its time is unknown (never an exception, never a date made up).
        self.raw_min = reference_ticks - ((start_filetime - 1) * frequency // 10_000_000)
        self.raw_max = reference_ticks - (-((MAX_FILETIME - start_filetime + 1) * frequency) // 10_000_000) - 1

    def to_filetime(self, ticks: int) -> int | None:
        """The FILETIME of a raw timestamp, or None when it is out of range."""
        if self.raw_min <= ticks <= self.raw_max:
            return self.start_filetime + (ticks - self.reference_ticks) * 10_000_000 // self.ticks_per_second
        return None

    @staticmethod
    def to_datetime(filetime: int) -> datetime | None:
        return filetime_to_datetime(filetime)
