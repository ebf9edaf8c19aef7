"""The findings the scenarios' ground truth speaks of, by id, with what each means.

Rule authors map their rule ids onto these (most are the rule catalogue's names in the research
notes §5). A scenario's truth lists the findings that must be reported (``expect``) and every other
id here as one that must not be (``must_not``).
"""

from __future__ import annotations

FINDINGS: dict[str, str] = {
    "packets-dropped": "pktmon recorded drops; by component, reason and direction",
    "vlan-mismatch": "frames refused for their VLAN (filtered / unauthorized VLAN) at a vmNIC or the switch",
    "mac-spoofing": "frames from a MAC address that is not the vmNIC's, dropped by MAC spoofing protection",
    "overlapping-compartment-subnets": "two compartments whose IPv4 subnets overlap, and something makes them meet",
    "mtu-encapsulation-overhead": "encapsulated frames exceed the underlay MTU (VXLAN/NVGRE overhead)",
    "sriov-offload-bypass": "a VM's traffic uses the SR-IOV VF: the host sees no NBLs for it (bypass, not loss)",
    "vf-fallback": "a VM's traffic moved from the VF to the synthetic path during the trace",
    "packets-not-delivered": "packets entered the vSwitch and never reached their destination vmNIC, no drop event",
    "nat-port-exhaustion": "WinNat could not allocate a port: the external address pool is exhausted",
    "tcp-port-exhaustion": "TCPIP handed out ports with weak references because the port pool is exhausted",
    "duplicate-ip-address": "duplicate address detection failed: another host answers for the address",
    "wnv-lookup-failure": "network virtualization found no lookup record for a customer address",
    "vmnic-disconnected": "a vmNIC lost its media connection or stopped being operational during the trace",
    "vport-deleted": "a vSwitch port was deleted during the trace",
    "vport-policy-failure": "a port's security, ACL, VLAN or offload policy could not be applied",
    "vswitch-operation-failure": "a switch-level operation (policy, extension, team member) failed with a status",
    "mac-moved": "one MAC address moved between two vSwitch ports (or the move was prevented)",
    "trace-events-lost": "the session lost events (EventsLost / events-lost buffers)",
    "trace-payload-truncated": "packets were logged shorter than they were (pktmon --pkt-size)",
    "trace-circular-wrapped": "a circular log wrapped: the beginning of the capture is missing",
    "nat-default-route": "WinNat found a default route in an internal compartment (NAT stops for it)",
    "neighbor-unreachable": "ARP/ND for a neighbour was never answered: TCPIP marked it unreachable, never reachable",
    "overlapping-subnets-isolated": "compartments reuse one subnet in isolated virtual networks (different VSIDs): expected",
    "provider-not-decoded": "a networking provider's events are in the trace but no layer can decode them",
    "sdn-provider-failure": "HNS / VFP / LBFO events (decoded from the trace's own schema) report a failure",
    "vfp-rule-blocked": "a VFP Block rule (layer, group, rule named) matched a port's packets: VFP dropped them by policy",
    "vfp-port-drops": "VFP's guards or forwarding dropped a port's packets (VfpExt 51-57, 351), joined to pktmon's drops",
    "vfp-encap-missing": "a port's packets matched a VFP encap rule but VFP encapsulated none of them (it did elsewhere)",
    "same-drop-reason-several-components": "one pktmon drop reason at two or more components",
    "drops-in-lossy-trace": "packets were dropped while the session lost events: drop counts are lower bounds",
    "team-member-flaps": "a NIC team (SET/LBFO) member lost its link and got it back, or lost it repeatedly",
    "team-member-down": "a NIC team (SET/LBFO) member disconnected and was not back when the trace ended",
    "rdma-offload-bypass": "a port/NIC has RDMA enabled: its SMB Direct traffic bypasses the host capture (not loss)",
    "tcp-resets-on-vport": "many TCP resets on one vmNIC's flows, most of the host's (pktmon frames)",
    "tcp-retransmissions-on-vport": "TCP data segments sent again on one vmNIC's flows, most of the host's (pktmon frames)",
    "arp-nd-unanswered": "ARP requests / Neighbor Solicitations for an address never answered (pktmon frames)",
    "trace-no-packets": "pktmon logged its component list but no packet (started without --capture)",
}
