"""Byte-level builders for provider payloads, an ETL wrapper, and the etl-parser cross-check.

The payloads are packed here from the documented layouts (see each test module's docstring), so the
values a test expects are the ones it packed, never read back from wnvdiag.
"""

from __future__ import annotations

import importlib
import ipaddress
import struct
import uuid
from pathlib import Path

from diag.synth.etlwriter import EtlWriter


def u8(v: int) -> bytes:
    return struct.pack("<B", v)


def u16(v: int) -> bytes:
    return struct.pack("<H", v)


def u32(v: int) -> bytes:
    return struct.pack("<I", v)


def u64(v: int) -> bytes:
    return struct.pack("<Q", v)


def wstr(text: str) -> bytes:
    return text.encode("utf-16-le") + b"\x00\x00"


def cstr(text: str) -> bytes:
    return text.encode("latin-1") + b"\x00"


def counted(text: str, unit: str = "chars") -> bytes:
    """A VmSwitch/Netvsc name: u32 length (UTF-16 characters, or bytes) then the UTF-16 text."""
    raw = text.encode("utf-16-le")
    return u32(len(raw) // 2 if unit == "chars" else len(raw)) + raw


def guid(text: str) -> bytes:
    return uuid.UUID(text).bytes_le


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def mac(text: str) -> bytes:
    return bytes.fromhex(text.replace("-", "").replace(":", ""))


def sockaddr(text: str, port: int) -> bytes:
    """SOCKADDR_IN (16 bytes) or SOCKADDR_IN6 (28 bytes), as Windows lays them out."""
    address = ipaddress.ip_address(text)
    if address.version == 4:
        return u16(2) + struct.pack("!H", port) + address.packed + bytes(8)
    return u16(23) + struct.pack("!H", port) + bytes(4) + address.packed + bytes(4)


def write_events(path: Path, provider: str, events: list[tuple], **writer_args) -> Path:
    """``events``: (event_id, version, payload) or (event_id, version, payload, keywords)."""
    with EtlWriter(path, logger_name="NetTrace", buffer_size=65536, **writer_args) as w:
        for i, event in enumerate(events):
            event_id, version, payload, *rest = event
            w.write_event(uuid.UUID(provider), event_id, version, payload, keywords=rest[0] if rest else 0,
                          timestamp=w.start_filetime + i * 10_000_000)
    return path


# -- etl-parser's generated layouts, as an independent description of the same events ----------------

def etl_parser_types(module: str, event_id: int, version: int) -> list[str] | None:
    """The field types etl-parser declares for an event ('Int32ul', 'Bytes', 'WString', ...), or None."""
    mod = importlib.import_module(f"etl.parsers.etw.{module}")
    suffix = f"_{event_id}_{version}"
    cls = next((value for name, value in vars(mod).items() if name.endswith(suffix) and hasattr(value, "pattern")), None)
    if cls is None:
        return None
    out = []
    for sub in cls.pattern.subcons:
        con = sub.subcon
        out.append(getattr(con, "__name__", None) or _construct_name(con))
    return out


def _construct_name(con) -> str:
    import construct
    from etl import utils
    for name in ("WString", "CString", "Guid", "SystemTime"):
        if con is getattr(utils, name):
            return name
    for name in ("Int8ul", "Int16ul", "Int32ul", "Int64ul", "Int8sl", "Int16sl", "Int32sl", "Int64sl", "Double"):
        if con is getattr(construct, name):
            return name
    if isinstance(con, construct.Bytes):
        return "Bytes"
    return type(con).__name__


_AS_ETL_PARSER = {"u8": ["Int8ul"], "u16": ["Int16ul"], "u32": ["Int32ul"], "u64": ["Int64ul"], "i64": ["Int64sl"],
                  "i32": ["Int32sl"], "bool8": ["Int8ul"], "bool32": ["Int8ul"],  # etl-parser types win:Boolean as one byte
                  "guid": ["Guid"], "wstr": ["WString"], "cstr": ["CString"], "counted_wstr": ["Int32ul", "Bytes"],
                  "ipv4": ["Int32ul"], "ptr": ["Int64ul"], "bin": ["Bytes"], "mac": ["Bytes"], "ip": ["Bytes"], "sockaddr": ["Bytes"]}


def layout_as_etl_parser(fields: tuple) -> list[str]:
    out: list[str] = []
    for field in fields:
        out += _AS_ETL_PARSER[field[1]]
    return out
