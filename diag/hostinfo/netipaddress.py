"""``Get-NetIPAddress [-IncludeAllCompartments]`` output: the default list view, or ``ConvertTo-Json``.

The list view is one ``Name : Value`` record per address, records separated by blank lines, long
values wrapped onto indented lines. Property names are those of the MSFT_NetIPAddress CIM class,
which PowerShell never localizes. In JSON the enumerations are numbers; their names are those of
the MSFT_NetIPAddress class documentation (AddressFamily 2 IPv4, 23 IPv6; AddressState, PrefixOrigin,
SuffixOrigin as below). Neither form has a compartment: it comes from ipconfig, matched by
interface index or alias.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from diag.hostinfo.model import HostAddress
from diag.hostinfo.text import HostInfoError

_PROPERTY = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9]*)\s*:(?:\s(?P<value>.*))?$")
_WRAPPED = re.compile(r"^\s+(?P<value>\S.*?)\s*$")
KNOWN = frozenset({"IPAddress", "InterfaceIndex", "InterfaceAlias", "AddressFamily", "Type", "PrefixLength",
                   "PrefixOrigin", "SuffixOrigin", "AddressState", "ValidLifetime", "PreferredLifetime", "SkipAsSource",
                   "PolicyStore", "Store", "CompartmentId", "PSComputerName", "ifIndex", "ifAlias"})
FAMILIES = {2: "IPv4", 23: "IPv6", "IPv4": "IPv4", "IPv6": "IPv6"}
ADDRESS_STATES = {0: "Invalid", 1: "Tentative", 2: "Duplicate", 3: "Deprecated", 4: "Preferred"}
PREFIX_ORIGINS = {0: "Other", 1: "Manual", 2: "WellKnown", 3: "Dhcp", 4: "RouterAdvertisement"}


def recognises(text: str) -> bool:
    m = _PROPERTY.match(text)
    return bool(m and m.group("name") in KNOWN)


class NetIPAddressParser:
    """Feed it the lines of one Get-NetIPAddress list-view section."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.records: list[tuple[int, dict[str, tuple[int, str]]]] = []
        self.current: dict[str, tuple[int, str]] | None = None
        self.last: str | None = None
        self.warnings: list[str] = []

    def feed(self, line_no: int, text: str) -> None:
        if not text.strip():
            self.current, self.last = None, None
            return
        m = _PROPERTY.match(text)
        if m:
            self._property(line_no, m.group("name"), (m.group("value") or "").strip())
            return
        m = _WRAPPED.match(text)
        if m and self.last is not None:
            at, value = self.current[self.last]
            self.current[self.last] = (at, value + m.group("value"))
            return
        raise HostInfoError(f"not Get-NetIPAddress output: {text.strip()[:60]!r}", f"{self.path}:{line_no}")

    def _property(self, line_no: int, name: str, value: str) -> None:
        if name not in KNOWN:
            raise HostInfoError(f"{name!r} is not a Get-NetIPAddress property", f"{self.path}:{line_no}")
        if self.current is None:
            self.current = {}
            self.records.append((line_no, self.current))
        if name in self.current:
            raise HostInfoError(f"{name} appears twice in one record (is a blank line missing between records?)",
                                f"{self.path}:{line_no}")
        self.current[name], self.last = (line_no, value), name

    def finish(self) -> None:
        self.current, self.last = None, None

    def results(self) -> list[HostAddress]:
        return [address_from_record(self.path, start, {k: v for k, (_, v) in rec.items()},
                                    {k: at for k, (at, _) in rec.items()}) for start, rec in self.records]


def address_from_record(path: str, start: int, record: dict[str, Any], lines: dict[str, int] | None = None) -> HostAddress:
    """One address from a record; errors name the line of the offending property (or of the record)."""
    lines = lines or {}

    def fail(name: str, message: str) -> HostInfoError:
        return HostInfoError(message, f"{path}:{lines.get(name, start)}")

    if not record.get("IPAddress"):
        raise fail("IPAddress", "record without IPAddress")
    try:
        ip = ipaddress.ip_address(str(record["IPAddress"]).split("%", 1)[0])
    except ValueError:
        raise fail("IPAddress", f"IPAddress {record['IPAddress']!r} is not an IP address") from None
    family = FAMILIES.get(record.get("AddressFamily", f"IPv{ip.version}"))
    if family is None:
        raise fail("AddressFamily", f"AddressFamily {record['AddressFamily']!r} is neither IPv4 nor IPv6")
    if family != f"IPv{ip.version}":
        raise fail("AddressFamily", f"AddressFamily {family} does not match IPAddress {ip}")
    return HostAddress(
        address=str(ip), family=family, prefix_length=_integer(record, "PrefixLength", fail, 0, ip.max_prefixlen),
        if_index=_integer(record, "InterfaceIndex", fail, 0, 2**32 - 1),
        interface_alias=record.get("InterfaceAlias") or None,
        compartment_id=_integer(record, "CompartmentId", fail, 0, 2**32 - 1),
        state=_enum(record.get("AddressState"), ADDRESS_STATES), origin=_enum(record.get("PrefixOrigin"), PREFIX_ORIGINS),
        source=f"{path}:{lines.get('IPAddress', start)}")


def _integer(record: dict, name: str, fail, low: int, high: int) -> int | None:
    value = record.get(name)
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise fail(name, f"{name} {value!r} is not a number") from None
    if not low <= number <= high:
        raise fail(name, f"{name} {number} is out of range")
    return number


def _enum(value: Any, names: dict[int, str]) -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, int):
        return names.get(value, str(value))
    return str(value)
