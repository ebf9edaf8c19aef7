"""NDIS-PacketCapture events (netsh trace capture=yes) → capture points, flows, VLANs, large sends."""

from __future__ import annotations

from typing import Any

from diag.decode import ndiscap
from diag.decode.frames import DEPTH_NETWORK, decode, flow_key, key_text
from diag.facts.evidence import Bounded, Cuts, when
from diag.facts.network import CapturePoint, Flow, Offload, Segment

SOURCE = "NDIS-PacketCapture"
MAX_POINTS = 1024
MAX_FLOWS = 2048
ETHERNET_MAX = 1518  # 1500 bytes of payload, Ethernet header and one 802.1Q tag


class CaptureCollector:
    def __init__(self) -> None:
        self.cuts = Cuts()  # what capped list fields of the facts left out
        self.points: Bounded = Bounded(MAX_POINTS)
        self.flows: dict[tuple, list] = {}
        self.flows_pruned = 0
        self.vlans: dict[int, set[str]] = {}
        self.vlan_packets: dict[int, int] = {}

    def event(self, event_id: int, name: str, f: dict[str, Any], record: Any) -> None:
        if event_id not in ndiscap.PACKET_EVENTS:
            return
        key = (f["miniport_if_index"], f["lower_if_index"], f.get("source_port_id"))
        point = self.points.slot(key, lambda: {"port": f.get("source_port_name"), "nic": f.get("source_nic_name"),
                                               "nic_type": f.get("source_nic_type"), "link": f["link_type"],
                                               "in": 0, "out": 0, "unknown": 0, "bytes": 0, "truncated": 0,
                                               "lso": 0, "vlans": set()})
        frame = f["frame"]
        if point is not None:
            point[f["direction"]] += 1
            point["bytes"] += len(frame)
            point["truncated"] += f["truncated"]
        vlan = f.get("vlan_id")
        decoded = decode(frame, f["link_type"], DEPTH_NETWORK)
        if not vlan and decoded.vlans:
            vlan = decoded.vlans[0]
        if vlan:
            where = f.get("source_port_name") or f"IfIndex {f['lower_if_index']}"
            self.vlans.setdefault(vlan, set()).add(where)
            self.vlan_packets[vlan] = self.vlan_packets.get(vlan, 0) + 1
            if point is not None:
                point["vlans"].add(vlan)
        if point is not None and f["direction"] == "out" and _large_send(frame, decoded):
            point["lso"] += 1
        self._flow(frame, f["link_type"], record.filetime)

    def _flow(self, frame: Any, link: str, filetime: int | None) -> None:
        fkey = flow_key(frame, link)
        if fkey is None:
            return
        flow = self.flows.get(fkey)
        if flow is None:
            if len(self.flows) >= 2 * MAX_FLOWS:
                keep = sorted(self.flows.items(), key=lambda item: -item[1][0])
                self.flows = dict(keep[:MAX_FLOWS])
                self.flows_pruned += len(keep) - MAX_FLOWS
            flow = self.flows[fkey] = [0, 0, filetime, filetime]
        flow[0] += 1
        flow[1] += len(frame)
        if filetime:
            flow[2] = min(flow[2] or filetime, filetime)
            flow[3] = max(flow[3] or filetime, filetime)

    def facts(self, flow_limit: int = 64) -> list:
        out: list = []
        for (miniport, lower, port_id), p in self.points.items():
            out.append(CapturePoint(miniport_if_index=miniport, lower_if_index=lower, source_port_id=port_id,
                                    source_port_name=p["port"], nic_name=p["nic"], nic_type=p["nic_type"],
                                    link_type=p["link"], packets_in=p["in"], packets_out=p["out"],
                                    packets_unknown_direction=p["unknown"], bytes=p["bytes"], truncated=p["truncated"],
                                    large_send_frames=p["lso"], vlans=self.cuts.cap(sorted(p["vlans"]))))
            if p["lso"]:
                out.append(Offload(where=p["nic"] or p["port"] or f"IfIndex {lower}", offload="large send (LSO)",
                                   value=True, count=p["lso"], source=SOURCE))
        for fkey, (packets, size, first, last) in sorted(self.flows.items(), key=lambda item: -item[1][0])[:flow_limit]:
            vlan, proto, src, dst, sport, dport = fkey
            text = key_text(fkey)
            out.append(Flow(source="ndiscap", protocol=str(text["protocol"]), src=text.get("src"), dst=text.get("dst"),
                            sport=sport, dport=dport, vlan=vlan, packets=packets, bytes=size,
                            reverse_seen=(vlan, proto, dst, src, dport, sport) in self.flows,
                            first_seen=when(first), last_seen=when(last)))
        return out

    def segments(self) -> list[Segment]:
        return [Segment(segment_type="vlan", value=vlan, seen_on=self.cuts.cap(sorted(where)), sources=[SOURCE],
                        packets=self.vlan_packets.get(vlan, 0)) for vlan, where in sorted(self.vlans.items())]


def _large_send(frame: Any, decoded: Any) -> bool:
    """A send larger than an Ethernet frame, or with IP length 0 (LSOv2): the NIC will segment it."""
    if decoded.ip_version is None:
        return False
    return len(frame) > ETHERNET_MAX or decoded.ip_length == 0
