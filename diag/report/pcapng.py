"""Evidence pcapng: the packets of a trace, with what pktmon's own pcapng export loses.

    export_pcap("trace.etl", "out.pcapng", options=PcapOptions(first_snapshot=True))

Sources: pktmon packet events (160 snapshot, 170 drop) and NDIS-PacketCapture fragments (1001, and
1003 at the vmSwitch), which is what ``netsh trace start capture=yes`` records.

- every pktmon component that saw packets becomes an interface (IDB) named ``pktmon <id>: <name>``,
  with the component's description and type name as its description; an NDIS capture point becomes
  ``ndis IfIndex <n>`` (``... over IfIndex <m>`` for a filter above a miniport), a vmSwitch capture
  ``vmswitch port <name>``;
- every packet becomes an Enhanced Packet Block: timestamp (100 ns, the trace's own clock), direction
  (``epb_flags``), for pktmon the PktGroupId as ``epb_packetid`` and a comment with PktGroupId,
  PktNumber, appearance, component and edge; a drop's comment starts ``pktmon drop:`` and names the
  reason, its number and the drop location (``frame.comment contains "pktmon drop"`` in Wireshark);
- packets are in time order, and every interface is declared before the first packet
  (``diag.report.pcapngfile``);
- a frame pktmon labels Wi-Fi is written as 802.11 only when it is one: several builds log Ethernet
  frames under that label (``diag.decode.frames.wifi_link``); an 802.11 frame logged decrypted but
  still flagged Protected has the flag cleared, and its comment says so (Wireshark would otherwise
  read its plaintext as ciphertext).

What is written (``PcapOptions``): by default every snapshot, so one packet appears once per
component it crossed (Wireshark's TCP analysis then reads the copies as retransmissions);
``first_snapshot`` keeps one copy per packet, the snapshot where it entered, with the drop that
ended it, if any, in its comment; ``components`` keeps the packets seen at those capture points
(pktmon component ids; NDIS LowerIfIndex values); ``drops_only`` keeps the drop events. The section
comment says which was written. Which snapshots are one packet follows the trace's numbering
(``diag.facts.snapshots``): (PktGroupId, PktNumber) with AppearanceCount from 1, or chains of
per-snapshot ids (builds 26100 and later).

``verdict`` adds ``epb_verdict`` (option 7, type 0 "hardware": drop reason and location, 32-bit
little-endian each) to drops. It is off by default: Wireshark 4.0 rewrites that option with the wrong
code and length when a file is saved again (``tshark -w``, editcap, mergecap), and the file it saves
cannot be opened. The drop is in the comment either way.

``match`` keeps only the packets (all their snapshots, or their first with ``first_snapshot``)
dropped at a (component, reason[, direction]) that an evidence row names: that is how ``--finding``
exports one finding's packets. Packets that pcapng cannot carry (pktmon media types other than
Ethernet, Wi-Fi and IP; NDIS fragments of an unfinished multi-event packet) are counted in
``ExportSummary.skipped`` and in the section comment. The trace is read twice (components, packet
identities and the packets to keep first, then the packets), one buffer at a time, however many files
are written (``export_pcaps``). A file with no packet to write is not written
(``ExportSummary.written`` is False).
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diag import __version__, knowledge
from diag.decode import ndiscap, pktmon
from diag.decode.frames import LINK_80211, LINK_ETHERNET, LINK_RAW_IP, LINK_WIFI, identity, wifi_link
from diag.decode.wire import WireError
from diag.errors import BadInputError
from diag.facts.snapshots import SnapshotChains
from diag.read import Trace
from diag.select import PacketFilter
from diag.report.pcapngfile import PcapngFile, option

Progress = Callable[[int, int], None]

__all__ = ["ExportSummary", "PcapOptions", "export_finding_pcaps", "export_pcap", "export_pcaps",
           "export_stored_finding", "matches_from_evidence"]

FILETIME_UNIX_EPOCH = 116_444_736_000_000_000
FILETIME_PER_SECOND = 10_000_000
LINKTYPE = {LINK_ETHERNET: 1, LINK_80211: 105, LINK_RAW_IP: 101}
PKTMON_LINKS = {1: LINK_ETHERNET, 2: LINK_WIFI, 3: LINK_RAW_IP}  # pktmon PacketType -> link
LINK_SUFFIX = {LINK_80211: " [802.11]", LINK_RAW_IP: " [raw IP]"}  # one component can log several media
INBOUND = {"In", "Rx", "Ingress"}
OUTBOUND = {"Out", "Tx", "Egress"}
PROTECTED = 0x40  # 802.11 Frame Control flags: the body is encrypted
IDENTITY_BYTES = 256  # as much frame as a packet's identity reads (headers, VXLAN/NVGRE inner ones included)
MAX_DROP_NOTES = 200_000  # dropped packets whose drop the first-snapshot comment can name


@dataclass(frozen=True)
class PcapOptions:
    drops_only: bool = False
    first_snapshot: bool = False
    components: frozenset[int] | None = None
    verdict: bool = False
    select: PacketFilter | None = None  # --since/--until/--address/--vlan (diag.select)

    def describe(self) -> str:
        parts = ["drop events only" if self.drops_only else
                 "the first snapshot of each packet (where it entered), its drop named in its comment"
                 if self.first_snapshot else "every snapshot: one copy of a packet per component it crossed"]
        if self.components is not None:
            parts.append("at component(s) " + ", ".join(str(c) for c in sorted(self.components)) + " only")
        if self.select is not None and self.select.active:
            parts.append(self.select.describe() + " only")
        return "; ".join(parts)


@dataclass
class ExportSummary:
    path: Path
    interfaces: int = 0
    packets: int = 0
    drops: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> packets not written
    components: dict[int, str] = field(default_factory=dict)
    written: bool = False
    contents: str = ""  # what was written (PcapOptions.describe), also in the file's section comment


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


class _PacketIdentity:
    """Which packet each pktmon snapshot belongs to, and whether it is where the packet entered.

    Packet keys: ``(PktGroupId << 16) | PktNumber`` for per-packet numbering (AppearanceCount from 1,
    the entry being appearance 1); for per-snapshot numbering, the bitwise complement of the id of the
    chain's first snapshot. Both passes over the trace see the snapshots in the same order, so both
    build the same chains.
    """

    def __init__(self) -> None:
        self.chains = SnapshotChains(FILETIME_PER_SECOND, _forget)

    def of(self, ev: pktmon.PacketEvent, filetime: int | None) -> tuple[int, bool, bool]:
        """(packet key, is the entry snapshot, only repeats a drop already logged)."""
        if ev.appearance:
            return (ev.pkt_group_id << 16) | ev.pkt_number, ev.appearance == 1, False
        link = PKTMON_LINKS.get(ev.packet_type, LINK_ETHERNET)
        ident = identity(bytes(ev.frame[:IDENTITY_BYTES]), 0, None, link)
        hop = (((ev.component_id << 16) | ev.edge_id) << 3) | ev.direction
        path, repeat = self.chains.join(ev.pkt_group_id, ident, filetime, hop, ev.dropped)
        entry = path is None
        if entry:
            path = [~ev.pkt_group_id]
            self.chains.open(ev.pkt_group_id, ident, filetime, hop, path)
        if ev.dropped and not repeat:
            self.chains.ended(ev.pkt_group_id, ident, path)
        return path[0], entry, repeat


def _forget(_path: list) -> None:
    """Chains that end need nothing more here: their packets' keys were handed out as they went."""


@dataclass
class _Survey:
    """What the first pass learns: components, and per output the packets to keep."""
    components: dict[int, dict[str, Any]] = field(default_factory=dict)
    keep: dict[Path, set[int] | None] = field(default_factory=dict)
    drops: dict[int, _DropNote] = field(default_factory=dict)  # packet key -> its first drop
    drops_not_noted: int = 0


def _pktmon_events(trace: Trace, progress: Progress | None = None, select: PacketFilter | None = None
                   ) -> Iterable[tuple[Any, pktmon.PacketEvent | dict | None]]:
    """(record, decoded) of pktmon component rundowns (dict) and packet events (PacketEvent; None:
    malformed), and (record, None) for every other event that carries a frame (NDIS-PacketCapture).
    Packet events ``select`` (bound to the trace) does not keep are left out; netsh's frames are filtered
    where they are put together (``_ndis_packet``)."""
    for record in trace.records(progress):
        if not record.is_event_header:
            continue
        provider = record.provider
        if provider == pktmon.PROVIDER and record.version == 0:
            if record.event_id in pktmon.PACKET_EVENTS:
                if select is not None and not select.keep_pktmon(record.payload, 0, len(record.payload),
                                                                 record.filetime):
                    continue
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
        elif provider == ndiscap.PROVIDER and record.event_id in ndiscap.PACKET_EVENTS:
            yield record, None


def export_pcap(trace_path: str | Path, out: str | Path, *, drops_only: bool = False, match: set[tuple] | None = None,
                options: PcapOptions | None = None, progress: Progress | None = None,
                phase: Callable[[str], None] | None = None) -> ExportSummary:
    """Write the packets of ``trace_path`` to the pcapng file ``out`` (see the module doc)."""
    options = options or PcapOptions(drops_only=drops_only)
    return export_pcaps(trace_path, {Path(out): match}, options=options, progress=progress, phase=phase)[Path(out)]


def export_pcaps(trace_path: str | Path, outputs: dict[Path, set[tuple] | None], *, drops_only: bool = False,
                 options: PcapOptions | None = None, progress: Progress | None = None,
                 phase: Callable[[str], None] | None = None) -> dict[Path, ExportSummary]:
    """Several pcapng files from one trace in the same two passes: ``outputs`` maps each file to
    its ``match`` (None: every packet). Each file is written whole or not at all. ``phase(text)``
    names each pass as it starts, ``progress(bytes_done, bytes_total)`` follows it through the file."""
    options = options or PcapOptions(drops_only=drops_only)
    for out in outputs:
        _check_destination(out)
    with Trace(trace_path) as trace:
        select = options.select.bind(trace.clock.start_filetime) if options.select is not None \
            and options.select.active else None
        if phase is not None:
            phase("pass 1 of 2: finding the packets")
        survey = _survey(trace, outputs, options, progress, select)
        if phase is not None:
            phase("pass 2 of 2: writing the packets")
        writers = {out: _Writer(out, survey, trace.header.os_build, options, survey.keep[out]) for out in outputs}
        try:
            identities = _PacketIdentity()
            track = options.first_snapshot or any(match is not None for match in outputs.values())
            pending: dict[tuple, bytearray] = {}
            for record, ev in _pktmon_events(trace, progress, select):
                if isinstance(ev, dict):
                    continue
                if ev is None and record.provider == ndiscap.PROVIDER:
                    _ndis_packet(record, writers.values(), pending, select)
                    continue
                key, entry, repeat = identities.of(ev, record.filetime) if track and ev is not None else (0, True, False)
                for writer in writers.values():
                    writer.add(record, ev, key, entry, repeat)
            for writer in writers.values():
                if pending:
                    writer.summary.skipped["NDIS fragments of a packet whose last fragment is not in the trace"] += \
                        len(pending)
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


def _survey(trace: Trace, outputs: dict[Path, set[tuple] | None], options: PcapOptions,
            progress: Progress | None = None, select: PacketFilter | None = None) -> _Survey:
    survey = _Survey(keep={out: None if match is None else set() for out, match in outputs.items()})
    matching = {out: match for out, match in outputs.items() if match is not None}
    if not (matching or options.first_snapshot):
        for _record, ev in _pktmon_events(trace, progress, select):
            if isinstance(ev, dict):
                survey.components[ev["component_id"]] = ev
        return survey
    identities = _PacketIdentity()
    for record, ev in _pktmon_events(trace, progress, select):
        if isinstance(ev, dict):
            survey.components[ev["component_id"]] = ev
            continue
        if ev is None:
            continue
        key, _entry, repeat = identities.of(ev, record.filetime)
        if not ev.dropped or repeat:
            continue
        if options.first_snapshot and key not in survey.drops:
            if len(survey.drops) < MAX_DROP_NOTES:
                survey.drops[key] = _DropNote(ev)
            else:
                survey.drops_not_noted += 1
        direction = knowledge.direction_name(ev.direction)
        for out, match in matching.items():
            if (ev.component_id, ev.drop_reason) in match or (ev.component_id, ev.drop_reason, direction) in match:
                survey.keep[out].add(key)
    return survey


class _DropNote:
    """What a first-snapshot comment says of the drop that ended the packet (the event's frame is not kept)."""

    __slots__ = ("component_id", "drop_reason", "drop_location", "direction", "edge_id")

    def __init__(self, ev: pktmon.PacketEvent) -> None:
        self.component_id, self.drop_reason, self.drop_location = ev.component_id, ev.drop_reason, ev.drop_location
        self.direction, self.edge_id = ev.direction, ev.edge_id


class _Writer:
    """One output file: which packets it takes, and how each becomes an EPB."""

    def __init__(self, out: Path, survey: _Survey, os_build: int | None, options: PcapOptions,
                 keep: set[int] | None) -> None:
        self.file = PcapngFile(out)
        self.summary = ExportSummary(path=out, components={i: _component_label(c)
                                                           for i, c in survey.components.items()},
                                     contents=options.describe())
        self.survey = survey
        self.os_build = os_build
        self.options = options
        self.keep = keep

    def _pktmon_interface(self, component_id: int, link: str) -> int:
        comp = self.survey.components.get(component_id, {})
        label = _component_label(comp)
        type_name = knowledge.component_type_name(comp["type"]) if "type" in comp else None
        description = "; ".join(x for x in (comp.get("description"), comp.get("name"), type_name) if x) or label
        name = f"pktmon {component_id}: {label}" + LINK_SUFFIX.get(link, "")
        return self.file.interface(("pktmon", component_id, link), LINKTYPE[link], name, description)

    def add(self, record: Any, ev: pktmon.PacketEvent | None, key: int, entry: bool, repeat: bool) -> None:
        summary, options = self.summary, self.options
        if ev is None:
            summary.skipped["malformed pktmon packet event"] += 1
            return
        if options.drops_only and not ev.dropped:
            return
        if options.components is not None and ev.component_id not in options.components:
            return
        if self.keep is not None and key not in self.keep:
            return
        if options.first_snapshot and not options.drops_only and (not entry or repeat):
            return
        link = PKTMON_LINKS.get(ev.packet_type)
        if link is None:
            summary.skipped[f"media type {knowledge.packet_type_name(ev.packet_type) or ev.packet_type}"] += 1
            return
        frame = bytes(ev.frame)
        note = ""
        if link == LINK_WIFI:
            link = wifi_link(frame)
            if link == LINK_80211 and frame[1] & PROTECTED:
                # logged after decryption with the Protected flag still set: Wireshark would read the
                # plaintext body as ciphertext
                frame = frame[:1] + bytes([frame[1] & ~PROTECTED]) + frame[2:]
                note = "; 802.11 Protected flag cleared (the frame was logged decrypted)"
        if_id = self._pktmon_interface(ev.component_id, link)
        direction = knowledge.direction_name(ev.direction) or str(ev.direction)
        where = f"PktGroupId {ev.pkt_group_id}, PktNumber {ev.pkt_number}, appearance {ev.appearance}, " \
                f"component {ev.component_id}, edge {ev.edge_id}, direction {direction}{note}"
        options_bytes = option(2, struct.pack("<I", _flags(direction))) + option(5, struct.pack("<Q", ev.pkt_group_id))
        drop = ev if ev.dropped else self.survey.drops.get(key) if options.first_snapshot else None
        if drop is not None:
            reason = knowledge.drop_reason_label(drop.drop_reason, self.os_build)
            comp_name = _component_label(self.survey.components.get(drop.component_id, {}))
            said = "pktmon drop" if ev.dropped else "pktmon drop (later on this packet's path)"
            text = f"{said}: {reason} (reason {drop.drop_reason}, location 0x{drop.drop_location:x}) at component " \
                   f"{drop.component_id} ({comp_name}); {where}"
            options_bytes += option(1, text.encode())
            if options.verdict:
                options_bytes += option(7, bytes([0]) + struct.pack("<II", drop.drop_reason, drop.drop_location))
            summary.drops += 1
        else:
            options_bytes += option(1, f"pktmon: {where}".encode())
        self.file.packet(if_id, _timestamp(record.filetime), frame, ev.original_size, options_bytes)
        summary.packets += 1

    def add_ndis(self, key: tuple, linktype: int, name: str, description: str, lower_if_index: int,
                 filetime: int | None, frame: bytes, direction: str, comment: str) -> None:
        options = self.options
        if options.drops_only or self.keep is not None:
            return  # NDIS-PacketCapture logs no drops
        if options.components is not None and lower_if_index not in options.components:
            return
        if_id = self.file.interface(key, linktype, name, description)
        flags = 1 if direction == "in" else 2 if direction == "out" else 0
        self.file.packet(if_id, _timestamp(filetime), frame, len(frame),
                         option(2, struct.pack("<I", flags)) + option(1, comment.encode()))
        self.summary.packets += 1

    def finish(self, trace_name: str) -> None:
        summary = self.summary
        summary.interfaces = self.file.interfaces
        if self.survey.drops_not_noted and self.options.first_snapshot:
            summary.skipped[f"drop notes past {MAX_DROP_NOTES} dropped packets (their first snapshot is written, "
                            "without the drop in its comment)"] = self.survey.drops_not_noted
        if not summary.packets:
            return
        comment = f"wnvdiag {__version__} evidence export of {trace_name}: {summary.packets} packets, " \
                  f"{summary.drops} drops; written: {summary.contents}"
        if summary.skipped:
            comment += "; not written: " + ", ".join(f"{n} ({why})" for why, n in summary.skipped.items())
        self.file.finish(comment, f"wnvdiag {__version__}")
        summary.written = True

    def discard(self) -> None:
        self.file.discard()


def _flags(direction: str) -> int:
    return 1 if direction in INBOUND else 2 if direction in OUTBOUND else 0


def _timestamp(filetime: int | None) -> int:
    return (filetime or FILETIME_UNIX_EPOCH) - FILETIME_UNIX_EPOCH


def _ndis_packet(record: Any, writers: Iterable[_Writer], pending: dict[tuple, bytearray],
                 select: PacketFilter | None = None) -> None:
    """An NDIS-PacketCapture fragment event: one packet (Windows 8.1 and later), or a part of one."""
    try:
        f = ndiscap.decode(record.event_id, record.version, record.payload, record.keywords, record.pointer_size)
    except (WireError, ValueError, struct.error):
        for writer in writers:
            writer.summary.skipped["malformed NDIS-PacketCapture fragment event"] += 1
        return
    keywords = record.keywords
    lower, miniport = f["lower_if_index"], f["miniport_if_index"]
    port_id = f.get("source_port_id")
    where = (record.event_id, lower, port_id)
    frame = bytes(f["frame"])
    start, end = keywords & ndiscap.KW_PACKET_START, keywords & ndiscap.KW_PACKET_END
    if not (start and end) and (start or end or where in pending):
        if start:
            pending[where] = bytearray(frame)
            return
        if where not in pending:
            for writer in writers:
                writer.summary.skipped["NDIS fragments of a packet whose first fragment is not in the trace"] += 1
            return
        pending[where] += frame
        if not end:
            return
        frame = bytes(pending.pop(where))
    link = f["link_type"]
    if select is not None and not (select.keep_time(record.filetime) and select.keep_frame(frame, link)):
        return
    if port_id is not None:
        key = ("vmswitch", port_id, link)
        name = f"vmswitch port {f.get('source_port_name') or port_id}"
        description = "; ".join(x for x in (f.get("source_nic_name"), f.get("source_nic_type")) if x) or name
    else:
        key = ("ndis", lower, link)
        name = f"ndis IfIndex {lower}" + (f" over IfIndex {miniport}" if lower != miniport else "")
        description = "NDIS-PacketCapture" + (" (a filter above the miniport)" if lower != miniport else "")
    comment = f"ndiscap: IfIndex {lower} (miniport {miniport}), direction {f['direction']}" + \
              (", truncated" if f["truncated"] else "") + (f", VLAN {f['vlan_id']}" if f.get("vlan_id") else "")
    for writer in writers:
        writer.add_ndis(key, LINKTYPE.get(link, 1), name, description, lower, record.filetime, frame,
                        f["direction"], comment)


def export_stored_finding(db_path: str | Path, finding_ref: str, trace_path: str | Path, out: str | Path,
                          *, drops_only: bool = False, options: PcapOptions | None = None,
                          progress: Progress | None = None, phase: Callable[[str], None] | None = None
                          ) -> ExportSummary:
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
    return export_pcap(trace_path, out, drops_only=drops_only, match=match, options=options, progress=progress,
                       phase=phase)


def export_finding_pcaps(trace_path: str | Path, run: Any, out_dir: str | Path, *, progress: Progress | None = None,
                         phase: Callable[[str], None] | None = None,
                         select: PacketFilter | None = None) -> dict[str, ExportSummary]:
    """One pcapng per finding of ``run`` whose evidence names drops: ``wnvdiag-<rule id>.pcapng``
    in ``out_dir`` (``check --pcap``), all from the same two passes over the trace. Findings without
    drop evidence get no file. ``select``: the packet filter the run was checked with."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    wanted = {f.rule_id: (out / f"wnvdiag-{f.rule_id}.pcapng", matches_from_evidence(f.evidence))
              for f in run.findings}
    wanted = {rule: (path, match) for rule, (path, match) in wanted.items() if match}
    if not wanted:
        return {}
    summaries = export_pcaps(trace_path, {path: match for path, match in wanted.values()}, progress=progress,
                             phase=phase, options=PcapOptions(select=select))
    return {rule: summaries[path] for rule, (path, _match) in wanted.items()}
