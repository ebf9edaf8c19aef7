"""read: the ETL container format. Buffers, logfile header, record headers; no payload decoding."""

from diag.read.buffers import Buffer
from diag.read.logfile import LogfileHeader
from diag.read.records import Record
from diag.read.trace import ReadStats, Trace, open_trace

__all__ = ["Buffer", "LogfileHeader", "ReadStats", "Record", "Trace", "open_trace"]
