"""``ipconfig [/allcompartments] [/all]`` output, English only.

The blocks it is made of: an optional "Windows IP Configuration" section, per compartment a
"Network Information for Compartment N" header between lines of ``=``, per adapter a header
"<type> adapter <name>:" and ``Label . . . . : value`` lines, multi-valued labels (DNS servers,
default gateways) continued on indented lines. Addresses carry a state suffix in ``/all`` output
("10.0.0.5(Preferred)") and link-local IPv6 addresses a ``%IfIndex`` scope, which gives the
adapter's interface index. Labels are localized on non-English Windows; those files are refused
with the line that gave it away, rather than half-read.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from diag.hostinfo.model import HostAddress, HostInterface
from diag.hostinfo.text import HostInfoError, LOCALIZED_HINT, looks_localized

_SEPARATOR = re.compile(r"^\s*=+\s*$")
_TITLE = re.compile(r"^\s*Windows IP Configuration\s*$")
_COMPARTMENT = re.compile(r"^\s*Network Information for Compartment (\d+)(?:\s*\(ACTIVE\))?\s*$", re.IGNORECASE)
_ADAPTER = re.compile(r"^(?P<type>\S.*?) adapter (?P<name>.+?)\s*:\s*$")
_LABEL = re.compile(r"^\s*(?P<label>[^\s.:][^:]*?)(?P<dots>(?:\s*\.)*)\s*:(?:\s(?P<value>.*))?$")
_CONTINUATION = re.compile(r"^\s{8,}(?P<value>\S.*?)\s*$")
_STATE_SUFFIX = re.compile(r"^(?P<value>.*?)\((?P<state>[A-Za-z]+)\)\s*$")

GLOBAL_LABELS = frozenset({"Host Name", "Primary Dns Suffix", "Node Type", "IP Routing Enabled", "WINS Proxy Enabled",
                           "DNS Suffix Search List"})
ADDRESS_LABELS = frozenset({"IPv4 Address", "Autoconfiguration IPv4 Address", "IPv6 Address", "Temporary IPv6 Address",
                            "Link-local IPv6 Address", "Site-local IPv6 Address"})
ADAPTER_LABELS = ADDRESS_LABELS | frozenset({
    "Media State", "Connection-specific DNS Suffix", "Description", "Physical Address", "DHCP Enabled",
    "Autoconfiguration Enabled", "Subnet Mask", "Lease Obtained", "Lease Expires", "Default Gateway", "DHCP Server",
    "DHCPv6 IAID", "DHCPv6 Client DUID", "DNS Servers", "Primary WINS Server", "Secondary WINS Server",
    "NetBIOS over Tcpip", "Connection-specific DNS Suffix Search List", "IPv4 Class Based Address",
})
MULTI_VALUED = frozenset({"DNS Servers", "Default Gateway", "DNS Suffix Search List",
                          "Connection-specific DNS Suffix Search List", "Primary WINS Server", "Secondary WINS Server"})


@dataclass
class _Adapter:
    interface: dict
    ipv4: list[dict] = field(default_factory=list)


class IpconfigParser:
    """Feed it the lines of one ipconfig section; ``interfaces``/``addresses`` hold the result."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.compartment: int | None = None
        self.adapter: _Adapter | None = None
        self.last_label: str | None = None
        self.interfaces: list[HostInterface] = []
        self.addresses: list[dict] = []
        self.warnings: list[str] = []
        self._open: list[_Adapter] = []

    def error(self, line_no: int, message: str) -> HostInfoError:
        return HostInfoError(message, f"{self.path}:{line_no}")

    @staticmethod
    def recognises(text: str) -> bool:
        """Whether a line can only come from ipconfig (used to detect the format of a file)."""
        if _SEPARATOR.match(text) or _TITLE.match(text) or _COMPARTMENT.match(text) or _ADAPTER.match(text):
            return True
        m = _LABEL.match(text)
        return bool(m and (m.group("dots") or _clean(m.group("label")) in ADAPTER_LABELS | GLOBAL_LABELS))

    def feed(self, line_no: int, text: str) -> None:
        if not text.strip() or _SEPARATOR.match(text):
            return
        if _TITLE.match(text):
            self._close()
            return
        m = _COMPARTMENT.match(text)
        if m:
            self._close()
            self.compartment = int(m.group(1))
            return
        m = _ADAPTER.match(text)
        if m and not text[0].isspace():
            self._open_adapter(line_no, m.group("type"), m.group("name"))
            return
        m = _CONTINUATION.match(text)
        if m and self.last_label in MULTI_VALUED and not _LABEL.match(text):
            self._label(line_no, self.last_label, m.group("value"))
            return
        m = _LABEL.match(text)
        if m:
            self._label_line(line_no, m)
            return
        self._unrecognised(line_no, text)

    def finish(self) -> None:
        self._close()

    # -- line kinds ---------------------------------------------------------------------------------
    def _unrecognised(self, line_no: int, text: str) -> None:
        if looks_localized(text):
            raise self.error(line_no, f"this is not English ipconfig output ({text.strip()[:60]!r}); {LOCALIZED_HINT}")
        raise self.error(line_no, f"not ipconfig output: {text.strip()[:60]!r}")

    def _open_adapter(self, line_no: int, adapter_type: str, name: str) -> None:
        self._close()
        self.adapter = _Adapter({"alias": name, "adapter_type": adapter_type, "compartment_id": self.compartment,
                                 "gateways": [], "dns_servers": [], "source": f"{self.path}:{line_no}"})
        self.last_label = None

    def _label_line(self, line_no: int, m: re.Match) -> None:
        label, value = _clean(m.group("label")), (m.group("value") or "").strip()
        known = ADAPTER_LABELS if self.adapter is not None else GLOBAL_LABELS
        if label not in known and label not in GLOBAL_LABELS:
            self._unknown_label(line_no, label, m)
            return
        self.last_label = label
        if value:
            self._label(line_no, label, value)

    def _unknown_label(self, line_no: int, label: str, m: re.Match) -> None:
        if not label.isprintable():
            raise self.error(line_no, f"garbled line: {m.group(0).strip()[:60]!r}")
        if looks_localized(label):
            raise self.error(line_no, f"unknown ipconfig label {label!r}; {LOCALIZED_HINT}")
        if label in ADAPTER_LABELS:
            raise self.error(line_no, f"{label!r} outside an adapter block (no '<type> adapter <name>:' line before it)")
        if not m.group("dots"):  # "Name : value" without dot leaders: another command's output
            raise self.error(line_no, f"not ipconfig output: {m.group(0).strip()[:60]!r}")
        self.warnings.append(f"{self.path}:{line_no}: unknown ipconfig label {label!r} ignored")
        self.last_label = None

    def _label(self, line_no: int, label: str, value: str) -> None:
        if self.adapter is None:
            return  # global settings (host name, node type, ...) are not part of the network model
        iface = self.adapter.interface
        if label in ADDRESS_LABELS:
            self._address(line_no, label, value)
        elif label == "Subnet Mask":
            self._mask(line_no, value)
        elif label == "Default Gateway":
            iface["gateways"].append(_address_text(self, line_no, value))
        elif label == "DNS Servers":
            iface["dns_servers"].append(_address_text(self, line_no, value))
        elif label == "Physical Address":
            iface["mac"] = value.upper()
        elif label == "Description":
            iface["description"] = value
        elif label == "DHCP Enabled":
            iface["dhcp_enabled"] = value.lower() == "yes"
        elif label == "Connection-specific DNS Suffix":
            iface["dns_suffix"] = value
        elif label == "Media State":
            iface["media_disconnected"] = "disconnected" in value.lower()

    def _address(self, line_no: int, label: str, value: str) -> None:
        state = None
        m = _STATE_SUFFIX.match(value)
        if m:
            value, state = m.group("value").strip(), m.group("state")
        text, scope = (value.split("%", 1) + [None])[:2]
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            raise self.error(line_no, f"{label}: {value!r} is not an IP address") from None
        iface = self.adapter.interface
        if scope is not None and label == "Link-local IPv6 Address":
            if not scope.isdigit():
                raise self.error(line_no, f"{label}: scope {scope!r} is not an interface index")
            iface["if_index"] = int(scope)
        entry = {"address": str(ip), "family": f"IPv{ip.version}", "state": state, "origin": label,
                 "compartment_id": self.compartment, "interface_alias": iface["alias"], "source": f"{self.path}:{line_no}"}
        self.addresses.append(entry)
        if ip.version == 4:
            self.adapter.ipv4.append(entry)

    def _mask(self, line_no: int, value: str) -> None:
        try:
            prefix = ipaddress.IPv4Network(f"0.0.0.0/{value}").prefixlen
        except ValueError:
            raise self.error(line_no, f"Subnet Mask: {value!r} is not a subnet mask") from None
        pending = [a for a in self.adapter.ipv4 if a.get("prefix_length") is None]
        if not pending:
            raise self.error(line_no, "Subnet Mask without an IPv4 Address before it")
        pending[0]["prefix_length"] = prefix

    def _close(self) -> None:
        if self.adapter is not None:
            iface = self.adapter.interface
            for entry in self.addresses:
                if entry["interface_alias"] == iface["alias"] and entry.get("if_index") is None:
                    entry["if_index"] = iface.get("if_index")
            self.interfaces.append(HostInterface(**iface))
        self.adapter, self.last_label = None, None

    def results(self) -> tuple[list[HostInterface], list[HostAddress], list[str]]:
        if self.interfaces and self.compartment is None:
            self.warnings.append(f"{self.path}:1: this is 'ipconfig /all' without /allcompartments: it shows "
                                 "compartment 1 only, so container compartments (and overlaps between them) cannot "
                                 "be seen; capture 'ipconfig /allcompartments /all'")
        return self.interfaces, [HostAddress(**a) for a in self.addresses], self.warnings


def _clean(label: str) -> str:
    return re.sub(r"[\s.]+$", "", label.strip())


def _address_text(parser: IpconfigParser, line_no: int, value: str) -> str:
    text = value.split("%", 1)[0].strip()
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise parser.error(line_no, f"{value!r} is not an IP address") from None
