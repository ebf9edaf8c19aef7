"""The logfile header: the payload of the first record of an ETL file (TRACE_LOGFILE_HEADER)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Fields before the two string pointers, identical for 32- and 64-bit producers.
_FIXED = struct.Struct("<IBBBBIIqIIIIIIII")
# Fields after the time-zone block; where they start depends on the pointer size.
_TAIL = struct.Struct("<qqqII")
_TIME_ZONE_SIZE = 176  # TIME_ZONE_INFORMATION (172 bytes) padded to 8
_TAIL_OFFSET = {8: 0x48 + _TIME_ZONE_SIZE, 4: 0x40 + _TIME_ZONE_SIZE}
HEADER_SIZE = {8: 0x118, 4: 0x110}

CLOCK_QPC, CLOCK_SYSTEM_TIME, CLOCK_CPU_CYCLES = 1, 2, 3
CLOCK_NAMES = {CLOCK_QPC: "QPC", CLOCK_SYSTEM_TIME: "system time", CLOCK_CPU_CYCLES: "CPU cycle counter"}

# EVENT_TRACE_* logging modes (evntrace.h) that matter to a reader of the file.
LOG_FILE_MODES = {
    0x00000001: "sequential",
    0x00000002: "circular",
    0x00000004: "append",
    0x00000008: "newfile",
    0x00000100: "real-time",
    0x00000400: "buffering",
    0x00000800: "private",
    0x00001000: "add-header",
    0x00008000: "relog",
    0x00080000: "private-in-proc",
    0x00100000: "mode-reserved",
    0x04000000: "compressed",
    0x08000000: "independent-session",
    0x10000000: "no-per-processor-buffering",
    0x20000000: "blocking",
}
MODE_CIRCULAR = 0x2


@dataclass(frozen=True, slots=True)
class LogfileHeader:
    buffer_size: int
    os_major: int
    os_minor: int
    os_build: int
    cpu_count: int
    end_time: int  # FILETIME, 100 ns since 1601 (UTC)
    timer_resolution: int  # 100 ns units
    max_file_size_mb: int
    log_file_mode: int
    buffers_written: int
    pointer_size: int
    events_lost: int
    cpu_speed_mhz: int
    boot_time: int
    perf_freq: int
    start_time: int  # FILETIME
    clock_type: int
    buffers_lost: int
    logger_name: str
    log_file_name: str

    @property
    def modes(self) -> list[str]:
        return [name for bit, name in LOG_FILE_MODES.items() if self.log_file_mode & bit]

    @property
    def circular(self) -> bool:
        return bool(self.log_file_mode & MODE_CIRCULAR)

    @property
    def clock_name(self) -> str:
        return CLOCK_NAMES.get(self.clock_type, f"unknown ({self.clock_type})")

    @property
    def ticks_per_second(self) -> int:
        """How many timestamp units make a second, for this file's clock type."""
        if self.clock_type == CLOCK_QPC and self.perf_freq > 0:
            return self.perf_freq
        if self.clock_type == CLOCK_CPU_CYCLES and self.cpu_speed_mhz > 0:
            return self.cpu_speed_mhz * 1_000_000
        return 10_000_000


def parse_logfile_header(payload: bytes | memoryview, pointer_size: int) -> LogfileHeader:
    """Decode TRACE_LOGFILE_HEADER; ``pointer_size`` comes from the record header type (32/64-bit)."""
    if pointer_size not in HEADER_SIZE:
        raise ValueError(f"pointer size {pointer_size}")
    size = HEADER_SIZE[pointer_size]
    if len(payload) < size:
        raise ValueError(f"logfile header is {len(payload)} bytes, expected at least {size}")
    (buffer_size, major, minor, _sub, _subminor, build, cpus, end_time, timer_res, max_size, mode,
     buffers_written, _start_buffers, declared_ptr, events_lost, cpu_mhz) = _FIXED.unpack_from(payload, 0)
    boot_time, perf_freq, start_time, clock_type, buffers_lost = _TAIL.unpack_from(
        payload, _TAIL_OFFSET[pointer_size])
    logger_name, rest = _utf16z(bytes(payload[size:]))
    log_file_name, _ = _utf16z(rest)
    return LogfileHeader(
        buffer_size=buffer_size, os_major=major, os_minor=minor, os_build=build & 0xFFFF,
        cpu_count=cpus, end_time=end_time, timer_resolution=timer_res, max_file_size_mb=max_size,
        log_file_mode=mode, buffers_written=buffers_written,
        pointer_size=declared_ptr if declared_ptr in (4, 8) else pointer_size,
        events_lost=events_lost, cpu_speed_mhz=cpu_mhz, boot_time=boot_time, perf_freq=perf_freq,
        start_time=start_time, clock_type=clock_type, buffers_lost=buffers_lost,
        logger_name=logger_name, log_file_name=log_file_name,
    )


def _utf16z(raw: bytes) -> tuple[str, bytes]:
    """Split one NUL-terminated UTF-16LE string off the front of ``raw``."""
    for i in range(0, len(raw) - 1, 2):
        if raw[i] == 0 and raw[i + 1] == 0:
            return raw[:i].decode("utf-16-le", "replace"), raw[i + 2:]
    return raw.decode("utf-16-le", "replace") if len(raw) % 2 == 0 else "", b""
