"""Dropped NBLs, group by group, with their rate over time and whether the drop is expected.

A Python rule because the evidence adds two columns computed from the reason code: what the reason
means in plain language, and whether drops of that kind are expected (a policy or the stack doing
its job) or suspicious. The join with ``drop_rate`` brings the rate over time of the same
(component, reason, direction) group.
"""

from durable.lang import c, m, when_all

META = {
    "id": "drop-rate",
    "title": "Dropped NBLs over time: rate, first and last drop, expected or suspicious",
    "status": "stable",
    "severity": "low",
    "confidence": "high",
    "description": (
        "Every drop group (component, reason, direction) with its rate over the trace: drops per second at the "
        "peak and on average, how long drops went on, the first and last drop, the layer that refused the "
        "packets in plain language, and whether drops of this kind are expected. Expected drops are a policy "
        "doing what it was configured to do (port ACLs, firewall, administratively prohibited) or the stack "
        "discarding what is not for it (multicast, not locally destined, switch-injected ICMP); everything "
        "else is suspicious. The sample packets (5-tuples) and the path to the drop point are in the drop "
        "group's facts and in the drop-paths finding."
    ),
    "impact": "Suspicious drops cost the workload packets; a steady rate points at a configuration, a burst at an event.",
    "remediation": (
        "Work through the suspicious groups first, largest rate first. A burst (peak far above the mean, few "
        "active seconds) lines up with an event: compare its first and last drop with the Hyper-V-VmSwitch, "
        "NetVsc and System log events of that time (`Get-WinEvent -LogName System -MaxEvents 200`). A steady "
        "rate is a setting: the drop reason's own finding in this report says which. For expected drops, "
        "confirm the policy is intended (`Get-VMNetworkAdapterAcl`, `Get-NetFirewallRule -Enabled True "
        "-Action Block`). Live counters: `pktmon counters --drop-reason`."
    ),
    "references": [
        "https://learn.microsoft.com/windows-server/networking/technologies/pktmon/pktmon",
        "https://learn.microsoft.com/windows-server/administration/windows-commands/pktmon-counters",
    ],
    "tags": ["pktmon", "drops", "rate", "overview"],
    "finding": {
        "summary": (
            "{total[count]} drop event(s) ({total[distinct_frames]} distinct frame(s)) in {matches} group(s); the "
            "largest, {d[count]} drop event(s) at component "
            "{d[component_id]} ({d[component_name]}, reason {d[reason_code]} \"{d[reason_name]}\"), peaked at "
            "{r[peak_per_second]}/s (mean {r[mean_per_second]}/s over {r[active_seconds]} s), from {d[first_seen]} "
            "to {d[last_seen]}."
        ),
        "rank_by": "d.count",
        "evidence": ["d.component_id", "d.component_name", "d.direction", "d.reason_code", "d.reason_name", "d.count",
                     "d.distinct_frames",
                     "d.first_seen", "d.last_seen", "r.peak_per_second", "r.mean_per_second", "r.active_seconds",
                     "r.bucket_seconds"],
    },
}

WHEN = when_all(
    c.d << (m.kind == "pktmon_drop"),
    c.r << (m.kind == "drop_rate") & (m.component_id == c.d.component_id) & (m.reason_code == c.d.reason_code)
    & (m.direction == c.d.direction),
)

# drops a policy makes on purpose, and discards of packets that were not for this host or port
POLICY = {8: "port ACL or filter", 12: "security policy", 15: "IPsec policy", 718: "port blocked by policy",
          909: "firewall (WFP) inspection", 911: "administratively prohibited"}
BY_DESIGN = {31: "ICMP request injected by the switch", 902: "not locally destined",
             1201: "destination is multicast"}
LAYERS = [((0, 38), "refused by the Hyper-V virtual switch"), ((201, 228), "lost in the network adapter (miniport)"),
          ((401, 404), "NetVsc: VMBus or the SR-IOV VF not ready"), ((601, 615), "refused by TCP/IP framing"),
          ((701, 719), "blocked by a VFP port policy"), ((901, 1002), "refused by IP (network layer)"),
          ((1200, 1232), "refused by TCP/UDP (transport layer)")]


def action(match):
    code = match["d"]["reason_code"]
    layer = next((text for (lo, hi), text in LAYERS if lo <= code <= hi), "refused by another layer")
    if code in POLICY:
        return {"cause": f"{layer}: {POLICY[code]}", "expected": "expected (policy)"}
    if code in BY_DESIGN:
        return {"cause": f"{layer}: {BY_DESIGN[code]}", "expected": "expected (by design)"}
    return {"cause": layer, "expected": "suspicious"}
