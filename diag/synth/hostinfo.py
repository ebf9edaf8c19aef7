"""The host-side text users attach to a case, as Windows prints it (English UI):
``ipconfig /allcompartments`` and ``Get-NetIPAddress -IncludeAllCompartments`` (default list view).

ipconfig prints one block per compartment, headed by a rule of ``=`` and "Network Information for
Compartment N" ("(ACTIVE)" for the compartment the command ran in), then one paragraph per adapter
with dotted labels. Get-NetIPAddress prints one ``Name : Value`` record per address, names padded
to the longest ("PreferredLifetime"); the default view has no compartment column.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

RULE = "=" * 61  # as in the seed document's ipconfig output


@dataclass(frozen=True)
class HostAddress:
    """One IPv4 address of an interface in a compartment."""

    compartment: int
    interface_alias: str
    interface_index: int
    address: str
    prefix_length: int
    gateway: str | None = None
    dns_suffix: str = ""
    link_local: str | None = None
    origin: str = "Manual"


# The labels exactly as ipconfig prints them (the dots are part of each message string).
LABELS = {
    "dns_suffix": "   Connection-specific DNS Suffix  . : ",
    "link_local": "   Link-local IPv6 Address . . . . . : ",
    "ipv4": "   IPv4 Address. . . . . . . . . . . : ",
    "mask": "   Subnet Mask . . . . . . . . . . . : ",
    "gateway": "   Default Gateway . . . . . . . . . : ",
}


def ipconfig_allcompartments(addresses: list[HostAddress], active: int = 1) -> str:
    """``ipconfig /allcompartments`` output for these addresses (one adapter per alias)."""
    lines = ["", "Windows IP Configuration", ""]
    for compartment in sorted({a.compartment for a in addresses}):
        suffix = " (ACTIVE)" if compartment == active else ""
        lines += ["", RULE, f"Network Information for Compartment {compartment}{suffix}", RULE, ""]
        for a in (x for x in addresses if x.compartment == compartment):
            mask = ipaddress.IPv4Network(f"0.0.0.0/{a.prefix_length}").netmask
            lines += [f"Ethernet adapter {a.interface_alias}:", ""]
            lines.append(LABELS["dns_suffix"] + a.dns_suffix)
            if a.link_local:
                lines.append(LABELS["link_local"] + f"{a.link_local}%{a.interface_index}")
            lines.append(LABELS["ipv4"] + a.address)
            lines.append(LABELS["mask"] + str(mask))
            lines.append(LABELS["gateway"] + (a.gateway or ""))
            lines.append("")
    return "\r\n".join(lines) + "\r\n"


_GET_NETIPADDRESS_FIELDS = ("IPAddress", "InterfaceIndex", "InterfaceAlias", "AddressFamily", "Type", "PrefixLength",
                            "PrefixOrigin", "SuffixOrigin", "AddressState", "ValidLifetime", "PreferredLifetime",
                            "SkipAsSource", "PolicyStore")
_WIDTH = max(len(f) for f in _GET_NETIPADDRESS_FIELDS)


def get_netipaddress(addresses: list[HostAddress]) -> str:
    """``Get-NetIPAddress -IncludeAllCompartments`` output (IPv4 records, list view)."""
    lines = [""]
    for a in addresses:
        values = (a.address, str(a.interface_index), a.interface_alias, "IPv4", "Unicast", str(a.prefix_length),
                  a.origin, a.origin, "Preferred", "Infinite ([TimeSpan]::MaxValue)",
                  "Infinite ([TimeSpan]::MaxValue)", "False", "ActiveStore")
        lines += [f"{name.ljust(_WIDTH)} : {value}" for name, value in zip(_GET_NETIPADDRESS_FIELDS, values)]
        lines.append("")
    return "\r\n".join(lines) + "\r\n"
