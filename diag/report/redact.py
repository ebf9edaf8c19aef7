"""``--redact``: replace IPs, MACs, host, user, switch, adapter and VM names, and file paths with
consistent pseudonyms, before anything is rendered, so every output of a run says the same thing.

- IPv4 and IPv6 addresses are mapped prefix-preservingly (bit by bit, each bit flipped by a keyed
  function of the bits before it, as in Crypto-PAn): two addresses that share their first n bits
  share exactly n bits after mapping, so subnets, containment and overlaps read as before. The
  private, shared, link-local, unique-local, loopback and multicast ranges keep their range prefix
  (10.x stays 10.x), and a network address (``10.0.1.0/24``) stays a network address.
- MAC addresses keep their vendor part (OUI: 00-15-5D is still Hyper-V) and separator style; the
  device part is replaced.
- Names are found by the field that holds them (``component_name``, ``vswitch``, ``host_name``,
  ``user`` …) and in Windows and Unix home-directory paths, then replaced wherever they occur, also
  inside summaries (``host-1f3a9c``, ``adapter-…``, ``switch-…``, ``user-…``, ``vm-…``).
- File paths (the trace, host-info files, rule files, the logger's file) become ``path-…`` with
  their extension; arguments that look like paths likewise.

The pseudonyms are keyed (HMAC-SHA-256) with a secret: the run database keeps one
(``diag.store.redaction_key``), so re-rendering a stored run gives the same pseudonyms. Without the
key, a pseudonym cannot be turned back into the address by trying candidates.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from typing import Any

from diag.report.model import RunReport

__all__ = ["Redactor", "redact_data", "redact_run"]

# Fields that are never personal and whose shape must stay (ids, hashes, versions, times, enums).
KEEP_KEYS = {
    "run_id", "sha256", "tool_version", "rules_version", "references", "fact_ids", "rule_id", "severity",
    "confidence", "min_severity", "tags", "kind", "schema", "started", "finished", "start_time", "end_time",
    "first_seen", "last_seen", "os_version", "os_build", "clock", "modes", "format", "verdict", "rules_loaded",
    "rules_run", "component_type", "reason_name", "direction",
}
PATH_KEYS = {"path", "log_file_name", "file", "trace_path", "host_info_path", "host_info_files"}
NAME_CATEGORIES = [  # (category, key pattern); first match wins
    ("user", re.compile(r"(^|_)(user|username|user_name|account|owner)($|_)", re.I)),
    ("switch", re.compile(r"(v?switch)", re.I)),
    ("vm", re.compile(r"(^|_)vm($|_)|vm_name|virtual_machine", re.I)),
    ("host", re.compile(r"host|computer|machine|server|node|dns_suffix|domain", re.I)),
    ("session", re.compile(r"logger_name|session_name", re.I)),
    ("adapter", re.compile(r"adapter|component_name|nic|interface_alias|if_?alias|port_name|friendly_name|"
                           r"^name$|description|compartment_name|network_name", re.I)),
]
_HOME = re.compile(r"(?i)(?:[A-Z]:)?[\\/](?:Users|home|Documents and Settings)[\\/]([^\\/\s\"'|]+)")
_MAC = re.compile(r"(?<![0-9A-Fa-f:-])([0-9A-Fa-f]{2})([:-])([0-9A-Fa-f]{2})\2([0-9A-Fa-f]{2})\2"
                  r"([0-9A-Fa-f]{2})\2([0-9A-Fa-f]{2})\2([0-9A-Fa-f]{2})(?![0-9A-Fa-f:-])")
_IPV4 = re.compile(r"(?<![\d.])((?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3})(/\d{1,2})?(?![\d.])")
_IPV6 = re.compile(r"(?<![0-9A-Fa-f:.])((?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:\.\d{1,3}){0,3})(%\w+)?(/\d{1,3})?"
                   r"(?![0-9A-Fa-f:])")
_PATHLIKE = re.compile(r"[\\/]")
# An absolute path inside running text (not a URL): C:\dir\file, \\server\share\..., /dir/file.
_PATH_IN_TEXT = re.compile(r"(?<![\w:/.\\])(?:[A-Za-z]:[\\/]|\\\\|/)(?:[^\s;:\"'|<>,()\[\]]+[\\/])+[^\s;:\"'|<>,()\[\]]*")

# Ranges whose prefix is kept so a reader still sees "private", "link-local", ...
_KEEP_V4 = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
                                                "169.254.0.0/16", "127.0.0.0/8", "224.0.0.0/4")]
_KEEP_V6 = [ipaddress.ip_network(n) for n in ("fe80::/10", "fc00::/7", "ff00::/8", "2001:db8::/32")]


class Redactor:
    """Keyed, deterministic pseudonyms. One instance per key; results are cached."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key or secrets.token_bytes(32)
        self._bits: dict[tuple[int, int, int], int] = {}
        self.originals: set[str] = set()  # every value replaced (for tests and audits)

    def _mac_of(self, *parts: str) -> bytes:
        return hmac.new(self.key, "\x1f".join(parts).encode("utf-8"), hashlib.sha256).digest()

    def _tag(self, category: str, value: str) -> str:
        return self._mac_of(category, value.casefold()).hex()[:6]

    # -- addresses ----------------------------------------------------------------------------------

    def _preserve(self, value: int, width: int, keep: int) -> int:
        out = value >> (width - keep) if keep else 0
        for i in range(keep, width):
            prefix = value >> (width - i)
            cache_key = (width, i, prefix)
            flip = self._bits.get(cache_key)
            if flip is None:
                flip = self._mac_of("ip", str(width), str(i), str(prefix))[0] & 1
                self._bits[cache_key] = flip
            bit = (value >> (width - 1 - i)) & 1
            out = (out << 1) | (bit ^ flip)
        return out

    def ip(self, text: str, prefix_len: int | None = None) -> str:
        addr = ipaddress.ip_address(text)
        if addr.is_unspecified or (addr.version == 4 and int(addr) == 0xFFFFFFFF) or addr.is_loopback:
            return text
        width = addr.max_prefixlen
        keep_nets = _KEEP_V4 if addr.version == 4 else _KEEP_V6
        keep = next((n.prefixlen for n in keep_nets if addr in n), 0)
        if addr.version == 6 and addr.ipv4_mapped is not None:
            return "::ffff:" + self.ip(str(addr.ipv4_mapped))
        mapped = self._preserve(int(addr), width, keep)
        if prefix_len is not None and prefix_len < width:
            host_mask = (1 << (width - prefix_len)) - 1
            if int(addr) & host_mask == 0:  # a network address stays one
                mapped &= ~host_mask
        out = str(ipaddress.ip_address(mapped) if addr.version == 4 else ipaddress.IPv6Address(mapped))
        if out != text:
            self.originals.add(text)
        return out

    def mac(self, match: re.Match) -> str:
        octets, sep = [match.group(i) for i in (1, 3, 4, 5, 6, 7)], match.group(2)
        original = match.group(0)
        if all(o == "00" for o in octets) or all(o.lower() == "ff" for o in octets):
            return original
        device = self._mac_of("mac", "".join(octets).lower())[:3].hex()
        new = octets[:3] + [device[0:2], device[2:4], device[4:6]]
        upper = any(c.isupper() for c in original)
        self.originals.add(original)
        return sep.join(o.upper() if upper else o.lower() for o in new)

    # -- text ---------------------------------------------------------------------------------------

    def addresses(self, text: str) -> str:
        text = _MAC.sub(self.mac, text)

        def v6(m: re.Match) -> str:
            candidate = m.group(1)
            if candidate.count(":") < 2:
                return m.group(0)
            try:
                ipaddress.IPv6Address(candidate)
            except ValueError:
                return m.group(0)
            length = int(m.group(3)[1:]) if m.group(3) else None
            return self.ip(candidate, length) + (m.group(2) or "") + (m.group(3) or "")

        text = _IPV6.sub(v6, text)

        def v4(m: re.Match) -> str:
            length = int(m.group(2)[1:]) if m.group(2) else None
            return self.ip(m.group(1), length) + (m.group(2) or "")

        return _IPV4.sub(v4, text)

    def name(self, category: str, value: str) -> str:
        self.originals.add(value)
        return f"{category}-{self._tag(category, value)}"

    def path(self, value: str) -> str:
        self.originals.add(value)
        base = re.split(r"[\\/]", value)[-1]
        ext = base[base.rfind("."):] if "." in base[1:] and len(base) - base.rfind(".") <= 8 else ""
        return f"path-{self._tag('path', value)}{ext}"


def _category(key: str) -> str | None:
    for category, pattern in NAME_CATEGORIES:
        if pattern.search(key):
            return category
    return None


def redact_run(run: RunReport, key: bytes | None = None, *, redactor: Redactor | None = None) -> RunReport:
    """``run`` with every IP, MAC, name and path replaced by its pseudonym (see the module doc)."""
    return RunReport.model_validate(redact_data(run.model_dump(mode="json"), redactor or Redactor(key)))


def redact_data(data: Any, r: Redactor) -> Any:
    """Plain JSON data (a run, an ``inspect`` summary) with its IPs, MACs, names and paths pseudonymized."""
    names: dict[str, str] = {}  # original (casefolded) -> pseudonym
    paths: dict[str, str] = {}  # file paths named by path fields -> pseudonym

    def collect(node: Any, key: str | None = None) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                collect(v, k)
        elif isinstance(node, list):
            for v in node:
                collect(v, key)
        elif isinstance(node, str):
            for user in _HOME.findall(node):
                names.setdefault(user.casefold(), r.name("user", user))
            if key in PATH_KEYS and node.strip():
                paths.setdefault(node, r.path(node))
            if key and key not in KEEP_KEYS and key not in PATH_KEYS and node.strip():
                category = _category(key)
                if category:
                    names.setdefault(node.casefold(), r.name(category, node))

    collect(data)
    # Longest first, so "Switch A (external)" is replaced before "Switch A"; whole words only for short names.
    ordered = sorted(names.items(), key=lambda kv: -len(kv[0]))
    patterns = [
        (re.compile(re.escape(orig) if len(orig) >= 4 else rf"(?<!\w){re.escape(orig)}(?!\w)", re.I), pseudo)
        for orig, pseudo in ordered
    ]

    path_patterns = [(re.compile(re.escape(p)), pseudo) for p, pseudo in sorted(paths.items(), key=lambda kv: -len(kv[0]))]

    def text(value: str) -> str:
        out = value
        for pattern, pseudo in path_patterns:  # the same pseudonym as the path's own field
            out = pattern.sub(pseudo, out)
        out = _PATH_IN_TEXT.sub(lambda m: r.path(m.group(0)), out)
        for pattern, pseudo in patterns:
            out = pattern.sub(pseudo, out)
        return r.addresses(out)

    def walk(node: Any, key: str | None = None) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, key) for v in node]
        if not isinstance(node, str) or key in KEEP_KEYS:
            return node
        if key in PATH_KEYS:
            return r.path(node) if node else node
        if key == "argv" and _PATHLIKE.search(node):
            return r.path(node)
        return text(node)

    return walk(data)
