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
    "trace-events-lost": "the session lost events (EventsLost / events-lost buffers)",
    "trace-payload-truncated": "packets were logged shorter than they were (pktmon --pkt-size)",
    "trace-circular-wrapped": "a circular log wrapped: the beginning of the capture is missing",
}
