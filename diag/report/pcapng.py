"""Evidence pcapng: pktmon packets from a trace, with what pktmon's own pcapng export loses.

    export_pcap("trace.etl", "out.pcapng", drops_only=False, match=None)

- every pktmon component that saw packets becomes a pcapng interface (IDB) named
  ``pktmon <id>: <name>``, with the component's description and type as its description;
- every packet snapshot becomes an Enhanced Packet Block on its component's interface, with its
  timestamp (100 ns resolution, from the trace's own clock), direction flags (``epb_flags``),
  the pktmon PktGroupId as ``epb_packetid`` and a comment naming PktGroupId, PktNumber,
  appearance and edge;
- a drop also carries ``epb_verdict`` (option 7, type 0 "hardware", eight bytes: drop reason and drop location,
  little-endian 32-bit each) and a comment with the reason's name and number.

``match`` keeps only the packets (all their snapshots) dropped at a (component, reason[,
direction]) that an evidence row names: that is how ``--finding`` exports one finding's packets.
Packets whose media type pcapng cannot express (pktmon packet types other than Ethernet, WiFi and
IP) are not written; they are counted in ``ExportSummary.skipped`` and in the file's section
comment, never silently left out. The trace is read twice (components and the packets to keep
first, then the packets), one buffer at a time, however many files are written (``export_pcaps``).
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diag import __version__, knowledge
from diag.decode import pktmon
from diag.decode.wire import WireError
from diag.errors import BadInputError
from diag.read import Trace

__all__ = ["ExportSummary", "export_finding_pcaps", "export_pcap", "export_pcaps", "export_stored_finding",
           "matches_from_evidence"]

FILETIME_UNIX_EPOCH = 116_444_736_000_000_000
LINKTYPES = {1: 1, 2: 105, 3: 101}  # pktmon PacketType -> pcap LINKTYPE (Ethernet, 802.11, raw IP)
INBOUND = {"In", "Rx", "Ingress"}
OUTBOUND = {"Out", "Tx", "Egress"}


@dataclass
class ExportSummary:
    path: Path
    interfaces: int = 0
    packets: int = 0
    drops: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> packets not written
    components: dict[int, str] = field(default_factory=dict)


def matches_from_evidence(rows: Iterable[dict[str, Any]]) -> set[tuple]:
    """(component_id, reason_code[, direction]) of every evidence row that names a drop."""
    out: set[tuple] = set()
    for row in rows:
        comp, reason = row.get("component_id"), row.get("reason_code", row.get("drop_reason"))
        if isinstance(comp, int) and isinstance(reason, int):
            out.add((comp, reason, row["direction"]) if isinstance(row.get("direction"), str) else (comp, reason))
    return out


def _component_label(comp: dict[str, Any]) -> str:
    return comp.get("description") or comp.get("name") or "(no rundown event)"


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _block(block_type: int, body: bytes) -> bytes:
    length = 12 + len(body)
    return struct.pack("<II", block_type, length) + body + struct.pack("<I", length)


def _text(value: str) -> bytes:
    return value.encode("utf-8")


def _packets(trace: Trace) -> Iterable[tuple[Any, pktmon.PacketEvent | dict]]:
    """(record, decoded) for pktmon component rundowns (dict) and packet events (PacketEvent)."""
    for record in trace.records():
        if not record.is_event_header or record.provider != pktmon.PROVIDER or record.version != 0:
            continue
        if record.event_id in pktmon.PACKET_EVENTS:
            try:
                yield record, pktmon.packet_event(record.payload, record.event_id)
            except WireError:
                yield record, None
        elif record.event_id == pktmon.EVENT_COMPONENT:
            try:
                fields = pktmon.decode(record.event_id, 0, record.payload)
            except (WireError, ValueError, struct.error):
                continue
            if fields:
                yield record, fields


def export_pcap(
    trace_path: str | Path,
    out: str | Path,
    *,
    drops_only: bool = False,
    match: set[tuple] | None = None,
) -> ExportSummary:
    """Write the pktmon packets of ``trace_path`` to the pcapng file ``out`` (see the module doc)."""
    return export_pcaps(trace_path, {Path(out): match}, drops_only=drops_only)[Path(out)]


def export_pcaps(trace_path: str | Path, outputs: dict[Path, set[tuple] | None], *,
                 drops_only: bool = False) -> dict[Path, ExportSummary]:
    """Several pcapng files from one trace in the same two passes: ``outputs`` maps each file to
    its ``match`` (None: every packet). Each file is written whole or not at all."""
    for out in outputs:
        _check_destination(out)
    components: dict[int, dict[str, Any]] = {}
    keep: dict[Path, set[int] | None] = {out: None if match is None else set() for out, match in outputs.items()}
    with Trace(trace_path) as trace:
        for _record, ev in _packets(trace):
            if isinstance(ev, dict):
                components[ev["component_id"]] = ev
            elif ev is not None and ev.dropped:
                _note_matching_drop(ev, outputs, keep)
        writers = {out: _PcapngWriter(out, components, trace.header.os_build, drops_only, keep[out]) for out in outputs}
        try:
            for record, ev in _packets(trace):
                if not isinstance(ev, dict):
                    for writer in writers.values():
                        writer.add(record, ev)
            for writer in writers.values():
                writer.finish(Path(str(trace.path)).name)
        finally:
            for writer in writers.values():
                writer.discard()
    return {out: writer.summary for out, writer in writers.items()}


def _check_destination(out: Path) -> None:
    if out.is_dir():
        raise BadInputError("is a directory; give the pcapng file to write", out)
    if not out.parent.is_dir():
        raise BadInputError("the directory of the pcapng file does not exist", out)


def _note_matching_drop(ev: pktmon.PacketEvent, outputs: dict[Path, set[tuple] | None],
                        keep: dict[Path, set[int] | None]) -> None:
    """Remember the packet (its PktGroupId) for every output whose match names this drop."""
    direction = knowledge.direction_name(ev.direction)
    for out, match in outputs.items():
        if match is not None and ((ev.component_id, ev.drop_reason) in match
                                  or (ev.component_id, ev.drop_reason, direction) in match):
            keep[out].add(ev.pkt_group_id)


class _PcapngWriter:
    """One pcapng file: interfaces and packets are spooled to a temporary file, because the section
    header, which goes first, counts them; ``finish`` writes the file under a temporary name and
    renames it into place."""

    def __init__(self, out: Path, components: dict[int, dict[str, Any]], os_build: int | None, drops_only: bool,
                 keep_groups: set[int] | None) -> None:
        self.out = out
        self.summary = ExportSummary(path=out, components={i: _component_label(c) for i, c in components.items()})
        self.components = components
        self.os_build = os_build
        self.drops_only = drops_only
        self.keep_groups = keep_groups
        self.interfaces: dict[tuple[int, int], int] = {}
        self.blocks: list[bytes] = []
        self.spool = tempfile.TemporaryFile()

    def _interface(self, component_id: int, linktype: int) -> int:
        key = (component_id, linktype)
        if key not in self.interfaces:
            comp = self.components.get(component_id, {})
            label = _component_label(comp)
            type_name = knowledge.component_type_name(comp["type"]) if "type" in comp else None
            description = "; ".join(x for x in (comp.get("description"), comp.get("name"), type_name) if x) or label
            options = (_option(2, _text(f"pktmon {component_id}: {label}")) + _option(3, _text(description))
                       + _option(9, bytes([7])) + _option(0, b""))
            self.blocks.append(_block(1, struct.pack("<HHI", linktype, 0, 0) + options))
            self.interfaces[key] = len(self.interfaces)
        return self.interfaces[key]

    def add(self, record: Any, ev: pktmon.PacketEvent | None) -> None:
        summary = self.summary
        if ev is None:
            summary.skipped["malformed pktmon packet event"] += 1
            return
        if self.drops_only and not ev.dropped:
            return
        if self.keep_groups is not None and ev.pkt_group_id not in self.keep_groups:
            return
        linktype = LINKTYPES.get(ev.packet_type)
        if linktype is None:
            summary.skipped[f"media type {knowledge.packet_type_name(ev.packet_type) or ev.packet_type}"] += 1
            return
        if_id = self._interface(ev.component_id, linktype)
        ticks = (record.filetime or FILETIME_UNIX_EPOCH) - FILETIME_UNIX_EPOCH
        frame = bytes(ev.frame)
        direction = knowledge.direction_name(ev.direction) or str(ev.direction)
        flags = 1 if direction in INBOUND else 2 if direction in OUTBOUND else 0
        where = f"PktGroupId {ev.pkt_group_id}, PktNumber {ev.pkt_number}, appearance {ev.appearance}, " \
                f"component {ev.component_id}, edge {ev.edge_id}, direction {direction}"
        options = _option(2, struct.pack("<I", flags)) + _option(5, struct.pack("<Q", ev.pkt_group_id))
        if ev.dropped:
            reason = knowledge.drop_reason_label(ev.drop_reason, self.os_build)
            comp_name = _component_label(self.components.get(ev.component_id, {}))
            options += _option(1, _text(f"pktmon drop: {reason} (reason {ev.drop_reason}, location "
                                        f"0x{ev.drop_location:x}) at component {ev.component_id} ({comp_name}); {where}"))
            options += _option(7, bytes([0]) + struct.pack("<II", ev.drop_reason, ev.drop_location))
            summary.drops += 1
        else:
            options += _option(1, _text(f"pktmon: {where}"))
        options += _option(0, b"")
        epb = struct.pack("<IIIII", if_id, (ticks >> 32) & 0xFFFFFFFF, ticks & 0xFFFFFFFF, len(frame),
                          max(ev.original_size, len(frame))) + frame + b"\0" * (-len(frame) % 4) + options
        self.blocks.append(_block(6, epb))
        summary.packets += 1
        if len(self.blocks) >= 1024:
            self.spool.write(b"".join(self.blocks))
            self.blocks.clear()

    def finish(self, trace_name: str) -> None:
        summary = self.summary
        self.spool.write(b"".join(self.blocks))
        self.blocks.clear()
        summary.interfaces = len(self.interfaces)
        comment = f"wnvdiag {__version__} evidence export of {trace_name}: {summary.packets} packets, " \
                  f"{summary.drops} drops"
        if summary.skipped:
            comment += "; not written: " + ", ".join(f"{n} ({why})" for why, n in summary.skipped.items())
        shb = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + _option(4, _text(f"wnvdiag {__version__}")) \
            + _option(1, _text(comment)) + _option(0, b"")
        tmp = self.out.with_name(f".{self.out.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                fh.write(_block(0x0A0D0D0A, shb))
                self.spool.seek(0)
                shutil.copyfileobj(self.spool, fh, 1 << 20)
            os.replace(tmp, self.out)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise BadInputError(f"cannot write the pcapng file ({exc.strerror or exc})", self.out) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def discard(self) -> None:
        self.spool.close()


def export_stored_finding(db_path: str | Path, finding_ref: str, trace_path: str | Path, out: str | Path,
                          *, drops_only: bool = False) -> ExportSummary:
    """The packets of one stored finding (id or unique prefix), from the trace it was found in."""
    import hashlib

    from diag import store

    run, finding = store.load_finding(db_path, finding_ref)
    if run.trace.sha256:
        digest = hashlib.sha256()
        with open(trace_path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != run.trace.sha256:
            raise BadInputError(f"is not the trace of run {run.run_id} (finding {finding_ref}): SHA-256 differs",
                                trace_path)
    match = matches_from_evidence(finding.evidence)
    if not match:
        raise BadInputError(f"finding {finding_ref} ({finding.rule_id}) names no dropped packets "
                            "(no component_id and reason_code in its evidence)")
    return export_pcap(trace_path, out, drops_only=drops_only, match=match)


def export_finding_pcaps(trace_path: str | Path, run: Any, out_dir: str | Path) -> dict[str, ExportSummary]:
    """One pcapng per finding of ``run`` whose evidence names drops: ``wnvdiag-<rule id>.pcapng``
    in ``out_dir`` (``check --pcap``), all from the same two passes over the trace. Findings without
    drop evidence get no file."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    wanted = {f.rule_id: (out / f"wnvdiag-{f.rule_id}.pcapng", matches_from_evidence(f.evidence))
              for f in run.findings}
    wanted = {rule: (path, match) for rule, (path, match) in wanted.items() if match}
    if not wanted:
        return {}
    summaries = export_pcaps(trace_path, {path: match for path, match in wanted.values()})
    return {rule: summaries[path] for rule, (path, _match) in wanted.items()}
