"""A Switch Embedded Teaming (SET) member goes down for good: one of SETswitch's two physical NICs
loses its link in the middle of the trace and has not come back when the capture stops. The VMs keep
their traffic on the remaining member, which is now the team's only path out: no redundancy left.

Evidence: VmSwitch 116 for both members when the trace starts (their state), then 117 "Switch Team
member disconnected" for one member and the LBFO core's 185 for the same NetCfgInstanceId, with no
later 116/184 for it.
"""

from __future__ import annotations

from diag.synth.scenarios.base import Finding, Params, Scenario, Story
from diag.synth.scenarios.set_team_member_flap import SWITCH_FRIENDLY, link, team_host


def build(params: Params) -> Story:
    host, switch, members = team_host(params, "10.41.0")
    lost = members[1]
    down = host.start + (host.end - host.start) * 2 // 5
    link(host, down, switch, lost, up=False)
    packets = host.healthy_traffic()
    finding = Finding("team-member-down", {
        "switch": SWITCH_FRIENDLY, "member": lost["NicName"], "member_friendly_name": lost["NicFName"],
        "net_cfg_instance_id": str(lost["NetCfgInstanceId"]), "disconnects": 1, "reconnects": 0,
        "current_state": "down", "down_since_filetime": down})
    return host.story([finding], facts={"packets": packets, "drops": [], "remaining_member": members[0]["NicFName"]})


SCENARIO = Scenario(
    name="set-team-member-down",
    title="SET team member down: a physical NIC of the switch team disconnects and stays down",
    summary="VmSwitch 117 (and the LBFO core's 185) show one member of SETswitch's team disconnecting mid-trace "
            "with no reconnect before the capture stops; traffic carries on over the other member.",
    build=build,
    seed=1102,
    hosts=2,
)
