"""Microsoft-Windows-Kernel-Network {7DD42A49-5329-4832-8DFD-43D979153A88}: TCP and UDP data per connection.

Sources: field names and order from the provider's manifest as etl-parser 1.0.1 generated it
(``etl.parsers.etw.Microsoft_Windows_Kernel_Network``) and as OTRF/OSSEM's data dictionaries
(``data_dictionaries/windows/etw/Microsoft-Windows-Kernel-Network``) list it; meanings from the
provider's message strings ("TCPv4: %2 bytes transmitted from %4:%6 to %3:%5", ...). Two things
the generated layouts get wrong, settled by real bytes (microsoft__Tx__KernelNetwork.etl, a 64-bit
Windows 7 trace, every one of its 8,923 events): ``connid`` is pointer-sized (every payload is 4
bytes longer than a UInt32 ``connid`` allows), and the IPv6 events carry ``daddr`` and ``saddr``
as 16-byte addresses (``win:Binary`` without a length, which the generator drops). Addresses are
in network order, ports big-endian (the manifest's ``win:Port``).
"""

from __future__ import annotations

from typing import Any

from diag.decode.fields import Layout, ProviderLayouts

PROVIDER = "7dd42a49-5329-4832-8dfd-43d979153a88"
NAME = "Microsoft-Windows-Kernel-Network"

_PID_SIZE = (("pid", "u32"), ("size", "u32"))
_PORTS = (("dport", "port"), ("sport", "port"))
_TIMES = (("start_time", "u32"), ("end_time", "u32"))
_OPTIONS = (("mss", "u16"), ("sack_option", "u16"), ("timestamp_option", "u16"), ("window_scale_option", "u16"),
            ("receive_window", "u32"), ("receive_window_scale", "u16"), ("send_window_scale", "u16"))
_FAILURE = (("protocol", "u16"), ("failure_code", "u16"))
# (event id, name, fields between the addresses/ports and seqnum) for TCP (IPv4 ids; IPv6 = + 16) and UDP
_TCP = ((10, "TcpDataSent", _TIMES), (11, "TcpDataReceived", ()), (12, "TcpConnectAttempted", _OPTIONS),
        (13, "TcpDisconnected", ()), (14, "TcpDataRetransmitted", ()), (15, "TcpConnectionAccepted", _OPTIONS),
        (16, "TcpReconnectAttempted", ()), (18, "TcpDataCopied", ()))
_UDP = ((42, "UdpDataSent"), (43, "UdpDataReceived"))
TCP_FAILED, UDP_FAILED = 17, 49


def _layouts(pointer: str) -> dict[tuple[int, int], Layout]:
    out: dict[tuple[int, int], Layout] = {}
    for family, offset, address in (("v4", 0, "ipv4"), ("v6", 16, "ipv6")):
        head = _PID_SIZE + (("daddr", address), ("saddr", address)) + _PORTS
        tail = (("seqnum", "u32"), ("connid", pointer))
        for event_id, name, middle in _TCP:
            out[(event_id + offset, 0)] = Layout(f"{name}{family.upper()}", head + middle + tail)
        for event_id, name in _UDP:
            out[(event_id + offset, 0)] = Layout(f"{name}{family.upper()}", head + tail)
    out[(TCP_FAILED, 0)] = Layout("TcpConnectionFailed", _FAILURE)
    out[(UDP_FAILED, 0)] = Layout("UdpFailed", _FAILURE)
    return out


_BY_POINTER = {4: ProviderLayouts(_layouts("u32"), NAME), 8: ProviderLayouts(_layouts("u64"), NAME)}
LAYOUTS = _BY_POINTER[8].layouts
EVENT_NAMES = {event_id: _BY_POINTER[8].event_name(event_id, version) for event_id, version in LAYOUTS}


def event_name(event_id: int, version: int) -> str | None:
    return _BY_POINTER[8].event_name(event_id, version)


def decode(event_id: int, version: int, payload: memoryview, pointer_size: int = 8,
           os_build: int | None = None) -> dict[str, Any] | None:
    return _BY_POINTER[4 if pointer_size == 4 else 8].decode(event_id, version, payload)
