"""Each drop-reason rule on a real trace: pktmon drops of one reason, written with the synth writer.

Which rule a reason must raise comes from the failure catalogue in the research notes (section 5:
problem, the pktmon DropReason that is its evidence), not from the rule files. One check per
reason runs the whole shipped pack; the reason's rule must fire with the five drops, and no other
reason-specific rule may fire unless the catalogue puts the reason under it too.
"""

from __future__ import annotations

import pytest

from diag import api
from diag.synth import pktmon as pm
from diag.synth.etlwriter import EtlWriter
from diag.synth.frames import ETHERTYPE_IPV4, ethernet_frame, ip_packet, udp_datagram

IPPROTO_UDP = 17
SWITCH, VMNIC, TCPIP = 2, 3, 5
DROPS = 5

# reason -> (rule the catalogue names, component that reports it, other rules it also falls under)
CATALOGUE = {
    9: ("vlan-drops", VMNIC, set()),                     # 1  VLAN mismatch: Filtered VLAN
    16: ("mac-spoofing-drops", SWITCH, set()),           # 4  MAC spoofing protection
    17: ("dhcp-router-guard-drops", SWITCH, set()),      # 5  DHCP guard
    18: ("dhcp-router-guard-drops", SWITCH, set()),      # 6  router guard
    20: ("vsid-mismatch-drops", SWITCH, set()),          # 7  VSID mismatch
    23: ("mtu-drops", SWITCH, set()),                    # 8  MTU mismatch (no encapsulation here)
    8: ("port-acl-drops", SWITCH, set()),                # 14 port ACL: Filtered
    12: ("port-acl-drops", SWITCH, set()),               # 14 port ACL: failed security policy
    718: ("vfp-policy-drops", SWITCH, set()),            # 13 VFP port blocked
    30: ("storm-limit-drops", SWITCH, set()),            # 27 storm limit
    33: ("destination-down-drops", SWITCH, set()),       # 26 destination NIC disabled
    402: ("netvsc-drops", VMNIC, set()),                 # NetVsc: VF not ready
    907: ("tcpip-drops", TCPIP, set()),                  # 30 no route (TCP/IP network layer)
    912: ("offload-anomaly-drops", TCPIP, {"tcpip-drops"}),  # 23 bad checksum, also a TCP/IP NL drop
    922: ("address-resolution-drops", TCPIP, {"tcpip-drops"}),  # 17 ARP/ND failure: address-resolution timeout
    923: ("address-resolution-drops", TCPIP, {"tcpip-drops"}),  # 17 ARP/ND failure: address-resolution failure
}
REASON_RULES = {rule for rule, _, _ in CATALOGUE.values()}


def frame(n: int) -> bytes:
    datagram = udp_datagram("10.0.0.5", "10.0.0.9", 40000 + n, 53, b"query")
    packet = ip_packet("10.0.0.5", "10.0.0.9", IPPROTO_UDP, datagram, ident=n)
    return ethernet_frame("00-15-5d-00-00-09", "00-15-5d-00-00-05", ETHERTYPE_IPV4, packet)


def write_trace(path, reason: int, component: int) -> None:
    with EtlWriter(path, os_build=20348, buffer_size=16384) as w:
        t = w.start_filetime
        for comp_id, ctype, name, desc in ((SWITCH, pm.ComponentType.VMS_EXT_MINIPORT, "vmswitch.sys", "vSwitch"),
                                          (VMNIC, pm.ComponentType.VMS_VMNIC, "vmswitch.sys", "Container NIC 1"),
                                          (TCPIP, pm.ComponentType.PROTOCOL, "tcpip.sys", "TCPIP")):
            pm.write_pktmon_event(w, pm.EVENT_COMPONENT, pm.encode_component(comp_id, ctype, name, desc), timestamp=t)
        for n in range(DROPS):
            payload = pm.encode_packet(pkt_group_id=1000 + n, pkt_number=1, appearance=1, dir_tag=pm.DirTag.RX,
                                       packet_type=pm.PacketType.ETHERNET, component_id=component, edge_id=1,
                                       filter_id=0, frame=frame(n), drop_reason=reason, drop_location=0xE0001000)
            pm.write_pktmon_event(w, pm.EVENT_DROP, payload, timestamp=t + (n + 1) * 1_000_000)


@pytest.mark.parametrize("reason", sorted(CATALOGUE))
def test_the_catalogue_rule_of_each_drop_reason_fires(tmp_path, reason):
    rule_id, component, also = CATALOGUE[reason]
    trace = tmp_path / f"reason-{reason}.etl"
    write_trace(trace, reason, component)
    result = api.check(trace, db_path=tmp_path / "r.db", out_dir=tmp_path, threshold=api.Severity.critical)
    fired = {f.rule_id: f for f in result.run.findings}
    assert rule_id in fired, sorted(fired)
    rows = fired[rule_id].evidence
    assert sum(r.get("count", 0) for r in rows if r.get("reason_code", reason) == reason) == DROPS
    assert (fired.keys() & REASON_RULES) - {rule_id} <= also
    assert "packets-dropped" in fired
