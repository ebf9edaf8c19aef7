"""Synthetic ETL traces: a small ETL writer and PktMon event encoders.

Used to make the demo trace shipped in ``tests/data`` and bad-input variants for reader tests
(real traces from the web are never copied into the project). Uncompressed buffers only for now.
"""

from diag.synth.etlwriter import BufferFlag, BufferInfo, EtlWriter, filetime_from_unix

__all__ = ["BufferFlag", "BufferInfo", "EtlWriter", "filetime_from_unix"]
