"""Host information users attach to a trace: ``ipconfig /allcompartments [/all]``,
``Get-NetIPAddress -IncludeAllCompartments`` and ``Get-NetRoute -IncludeAllCompartments`` output, as
text or as ``ConvertTo-Json``.

    from diag.hostinfo import load_host_info
    info = load_host_info([Path("ipconfig.txt"), Path("netip.json")])   # -> HostInfo

A text file may hold several outputs one after the other when each starts with the command that
produced it (``ipconfig ...``, ``Get-NetIPAddress ...``, ``Get-NetRoute ...``, optionally after a
``PS ...>`` prompt);
without such a line, a switch from one format to the other is an error naming the line. Every
error is ``file:line: what is wrong`` (``diag.errors.BadInputError``). The files are linked after
reading: an address Get-NetIPAddress lists takes the compartment of the ipconfig adapter with the
same interface index (the ``%N`` scope of its link-local address) or the same alias, and so does
a route.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterable

from diag.hostinfo.ipconfig import IpconfigParser
from diag.hostinfo.model import HostAddress, HostInfo, HostInterface, HostRoute
from diag.hostinfo.netipaddress import NetIPAddressParser, address_from_record, recognises as netip_line
from diag.hostinfo.netroute import NetRouteParser, is_route_record, route_from_record
from diag.hostinfo.netroute import recognises as netroute_header
from diag.hostinfo.text import LOCALIZED_HINT, HostInfoError, looks_localized, read_text

__all__ = ["HostAddress", "HostInfo", "HostInfoError", "HostInterface", "HostRoute", "load_host_info",
           "parse_host_text"]

_COMMAND = re.compile(r"^\s*(?:PS [^>]*>\s*)?(?P<command>ipconfig|get-netipaddress|get-netroute)\b", re.IGNORECASE)
_PARSERS = {"ipconfig": IpconfigParser, "get-netipaddress": NetIPAddressParser, "get-netroute": NetRouteParser}
Parser = IpconfigParser | NetIPAddressParser | NetRouteParser


def load_host_info(paths: Iterable[str | Path]) -> HostInfo:
    """Read and link every file; raise ``HostInfoError`` (a ``BadInputError``) on the first bad line."""
    interfaces: list[HostInterface] = []
    addresses: list[HostAddress] = []
    routes: list[HostRoute] = []
    warnings: list[str] = []
    files = []
    for path in map(Path, paths):
        text = read_text(path)
        if text.lstrip("\ufeff \t\r\n")[:1] in ("[", "{"):
            found = _parse_json(text, str(path))
        else:
            found = parse_host_text(text.splitlines(), str(path))
        interfaces += found[0]
        addresses += found[1]
        warnings += found[2]
        routes += found[3]
        files.append(str(path))
    return _link(files, interfaces, addresses, routes, warnings)


def parse_host_text(lines: list[str], path: str, line_numbers: list[int] | None = None):
    """Interfaces, addresses, warnings and routes from the lines of one text file (``line_numbers``: where
    each is)."""
    parser: Parser | None = None
    out: tuple[list, list, list, list] = ([], [], [], [])
    for line_no, text in zip(line_numbers or range(1, len(lines) + 1), lines):
        text = text.rstrip("\r\n").lstrip("\ufeff")
        command = _COMMAND.match(text)
        if command:
            _flush(parser, out)
            parser = _PARSERS[command.group("command").lower()](path)
            continue
        if parser is None:
            if not text.strip():
                continue
            parser = _detect(text, path, line_no)
        parser.feed(line_no, text)
    _flush(parser, out)
    return out


def _detect(text: str, path: str, line_no: int) -> Parser:
    if IpconfigParser.recognises(text):
        return IpconfigParser(path)
    if netip_line(text):
        return NetIPAddressParser(path)
    if netroute_header(text):
        return NetRouteParser(path)
    if looks_localized(text):
        raise HostInfoError(f"not English ipconfig / Get-NetIPAddress / Get-NetRoute output ({text.strip()[:60]!r}); "
                            f"{LOCALIZED_HINT}", f"{path}:{line_no}")
    raise HostInfoError(f"neither ipconfig, Get-NetIPAddress nor Get-NetRoute output: {text.strip()[:60]!r}",
                        f"{path}:{line_no}")


def _flush(parser, out: tuple[list, list, list, list]) -> None:
    if parser is None:
        return
    parser.finish()
    if isinstance(parser, IpconfigParser):
        interfaces, addresses, warnings = parser.results()
        out[0].extend(interfaces)
        out[1].extend(addresses)
        out[2].extend(warnings)
    elif isinstance(parser, NetRouteParser):
        out[3].extend(parser.results())
    else:
        out[1].extend(parser.results())
        out[2].extend(parser.warnings)


# -- JSON ----------------------------------------------------------------------------------------------

def _parse_json(text: str, path: str):
    items = _json_items(text, path)
    if items and all(isinstance(item, str) for _, item in items):
        # ``ipconfig ... | ConvertTo-Json``: an array of the output's lines
        return parse_host_text([item for _, item in items], path, [line_no for line_no, _ in items])
    addresses, routes = [], []
    for line_no, item in items:
        if not isinstance(item, dict):
            raise HostInfoError(f"expected Get-NetIPAddress or Get-NetRoute objects, found {type(item).__name__}",
                                f"{path}:{line_no}")
        record = _json_record(item)
        if is_route_record(record):
            routes.append(route_from_record(path, line_no, record))
        else:
            addresses.append(address_from_record(path, line_no, record))
    return [], addresses, [], routes


def _json_record(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if not isinstance(value, (dict, list))}


def _json_items(text: str, path: str) -> list[tuple[int, Any]]:
    """The top-level objects of a JSON document with the line each starts on."""
    decoder = json.JSONDecoder()
    text = text.lstrip("\ufeff")
    start = len(text) - len(text.lstrip())
    try:
        if text[start] == "{":
            value, _end = decoder.raw_decode(text, start)
            return [(text.count("\n", 0, start) + 1, value)]
        pos, items = start + 1, []
        while True:
            pos = _skip(text, pos)
            if text[pos] == "]":
                break
            value, end = decoder.raw_decode(text, pos)
            items.append((text.count("\n", 0, pos) + 1, value))
            pos = _skip(text, end)
            if text[pos] == ",":
                pos += 1
            elif text[pos] != "]":
                raise json.JSONDecodeError("expected ',' or ']'", text, pos)
        return items
    except json.JSONDecodeError as exc:
        raise HostInfoError(f"not valid JSON ({exc.msg})", f"{path}:{exc.lineno}") from None
    except IndexError:
        raise HostInfoError("JSON ends before the array is closed", f"{path}:{text.count(chr(10)) + 1}") from None


def _skip(text: str, pos: int) -> int:
    while text[pos] in " \t\r\n":
        pos += 1
    return pos


# -- linking -------------------------------------------------------------------------------------------

def _link(files: list[str], interfaces: list[HostInterface], addresses: list[HostAddress], routes: list[HostRoute],
          warnings: list[str]) -> HostInfo:
    by_index = {i.if_index: i for i in interfaces if i.if_index is not None}
    by_alias = {i.alias.lower(): i for i in interfaces}
    merged: dict[tuple, HostAddress] = {}
    for address in addresses:
        iface = by_index.get(address.if_index) or by_alias.get((address.interface_alias or "").lower())
        update: dict[str, Any] = {}
        if iface is not None:
            if address.compartment_id is None:
                update["compartment_id"] = iface.compartment_id
            if address.if_index is None and iface.if_index is not None:
                update["if_index"] = iface.if_index
            if address.interface_alias is None:
                update["interface_alias"] = iface.alias
        address = address.model_copy(update=update)
        key = (address.address, address.if_index if address.if_index is not None else address.interface_alias)
        merged[key] = _merge(merged.get(key), address)
    routes = [_route_in_compartment(r, by_index, by_alias) for r in routes]
    compartments = {i.compartment_id for i in interfaces} | {a.compartment_id for a in merged.values()}
    return HostInfo(files=files, interfaces=interfaces, addresses=list(merged.values()), routes=routes,
                    compartments=sorted(c for c in compartments if c is not None), warnings=warnings)


def _route_in_compartment(route: HostRoute, by_index: dict, by_alias: dict) -> HostRoute:
    iface = by_index.get(route.if_index) or by_alias.get((route.interface_alias or "").lower())
    if route.compartment_id is not None or iface is None:
        return route
    return route.model_copy(update={"compartment_id": iface.compartment_id})


def _merge(old: HostAddress | None, new: HostAddress) -> HostAddress:
    if old is None:
        return new
    fields = {name: getattr(old, name) if getattr(old, name) is not None else getattr(new, name)
              for name in HostAddress.model_fields}
    fields["source"] = old.source if old.source == new.source else f"{old.source}; {new.source}"
    return HostAddress(**fields)
