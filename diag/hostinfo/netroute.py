"""``Get-NetRoute [-IncludeAllCompartments]`` output: the default table view, or ``ConvertTo-Json``.

The table view is a header (``ifIndex DestinationPrefix NextHop RouteMetric ifMetric PolicyStore``),
a line of dashes and one route per line; no value holds a space, so a row splits on whitespace. In
JSON the property names are those of the MSFT_NetRoute CIM class. Neither form needs a compartment:
a route takes the compartment of the ipconfig interface with the same index, unless the JSON says.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from diag.hostinfo.model import HostRoute
from diag.hostinfo.text import HostInfoError

_HEADER = re.compile(r"^\s*ifIndex\s+DestinationPrefix\s+NextHop\b(?P<rest>.*)$")
_RULE = re.compile(r"^\s*-+(\s+-+)*\s*$")


def recognises(text: str) -> bool:
    return bool(_HEADER.match(text))


def is_route_record(record: dict[str, Any]) -> bool:
    return "DestinationPrefix" in record and "NextHop" in record


class NetRouteParser:
    """Feed it the lines of one Get-NetRoute table."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.columns: list[str] | None = None
        self.routes: list[HostRoute] = []
        self.warnings: list[str] = []

    def feed(self, line_no: int, text: str) -> None:
        if not text.strip() or _RULE.match(text):
            return
        header = _HEADER.match(text)
        if header:
            self.columns = ["ifIndex", "DestinationPrefix", "NextHop", *header.group("rest").split()]
            return
        if self.columns is None:
            raise HostInfoError(f"a Get-NetRoute row before its header line: {text.strip()[:60]!r}",
                                f"{self.path}:{line_no}")
        values = text.split()
        if not 3 <= len(values) <= len(self.columns):
            raise HostInfoError(f"not a Get-NetRoute row ({len(values)} values for the columns "
                                f"{' '.join(self.columns)}): {text.strip()[:60]!r}", f"{self.path}:{line_no}")
        self.routes.append(route_from_record(self.path, line_no, dict(zip(self.columns, values))))

    def finish(self) -> None:
        self.columns = None

    def results(self) -> list[HostRoute]:
        return self.routes


def route_from_record(path: str, line_no: int, record: dict[str, Any]) -> HostRoute:
    """One route from a table row or a JSON object; an error names the file and line."""
    where = f"{path}:{line_no}"
    if_index = record.get("InterfaceIndex", record.get("ifIndex"))
    try:
        if_index = int(if_index)
    except (TypeError, ValueError):
        raise HostInfoError(f"route without a valid interface index ({if_index!r})", where) from None
    try:
        destination = ipaddress.ip_network(str(record.get("DestinationPrefix")), strict=False)
        next_hop = ipaddress.ip_address(str(record.get("NextHop")))
    except ValueError as exc:
        raise HostInfoError(f"not a route: {exc}", where) from None
    if next_hop.version != destination.version:
        raise HostInfoError(f"next hop {next_hop} is not of the family of {destination}", where)
    return HostRoute(destination=str(destination), next_hop=str(next_hop), if_index=if_index,
                     interface_alias=record.get("InterfaceAlias", record.get("ifAlias")),
                     compartment_id=_count(record.get("CompartmentId")), metric=_count(record.get("RouteMetric")),
                     source=where)


def _count(value: Any) -> int | None:
    """A non-negative whole number from a table cell or a JSON value; None when absent or not one."""
    return int(value) if isinstance(value, (int, str)) and not isinstance(value, bool) and str(value).isdigit() else None
