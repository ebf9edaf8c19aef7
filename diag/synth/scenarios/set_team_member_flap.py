"""A Switch Embedded Teaming (SET) member flaps: the vSwitch "SETswitch" teams two physical NICs;
during the trace one of them loses its link and gets it back, twice (a bad cable, transceiver or
switch port), while the VMs' traffic carries on over the other member. Nothing is dropped in the
host, but every flap moves traffic between members and halves the team's bandwidth while it lasts.

Evidence: VmSwitch 116 "Switch Team member connected" for both members when the trace starts (their
state, not a change), then 117 / 116 for the flapping member twice; the LBFO core's 185 / 184
("Member Nic {NetCfgInstanceId} Disconnected / Connected") report the same changes a moment later
and must not be counted twice.
"""

from __future__ import annotations

import uuid

from diag.synth import vmswitch
from diag.synth.scenarios.base import (MS, SECOND, ContainerHost, Finding, HostConfig, Params, Scenario, Story,
                                       add_event, port_name)

SWITCH_FRIENDLY = "SETswitch"
DRIVER_OBJECT = r"\Driver\vmswitch"
MEMBERS = (("Mellanox ConnectX-5 Adapter", 6), ("Mellanox ConnectX-5 Adapter #2", 7))
FLAPS = 2  # the member goes down and comes back this many times


def team_member(host: ContainerHost, friendly: str, nic_index: int) -> dict:
    return {"NicName": port_name(host.rng), "NicFName": friendly, "NicIndex": nic_index,
            "NetCfgInstanceId": uuid.UUID(int=host.rng.getrandbits(128), version=4)}


def link(host: ContainerHost, t: int, switch: dict, member: dict, up: bool) -> None:
    """The switch's own report (116/117) and, 2 ms later, the LBFO core's (184/185) of one change."""
    event = vmswitch.EVENT_TEAM_MEMBER_CONNECTED if up else vmswitch.EVENT_TEAM_MEMBER_DISCONNECTED
    add_event(host.builder, t, vmswitch, event, vmswitch.encode(event, **switch, **member, Status=0))
    core = vmswitch.EVENT_MEMBER_NIC_CONNECTED if up else vmswitch.EVENT_MEMBER_NIC_DISCONNECTED
    add_event(host.builder, t + 2 * MS, vmswitch, core, vmswitch.encode(
        core, DriverObject=DRIVER_OBJECT, Member="{" + str(member["NetCfgInstanceId"]).upper() + "}"))


def team_host(params: Params, subnet: str) -> tuple[ContainerHost, dict, list[dict]]:
    """A container host on SETswitch whose team members are all up before the traffic starts."""
    host = ContainerHost(params, switch_name=SWITCH_FRIENDLY, subnet=subnet, host_ip=f"{subnet}.2")
    HostConfig(host).vmswitch_ports(host.start - 900 * MS)
    switch = {"SwitchName": port_name(host.rng), "SwitchFName": SWITCH_FRIENDLY}
    members = [team_member(host, friendly, index) for friendly, index in MEMBERS]
    for member in members:
        link(host, host.start - 500 * MS, switch, member, up=True)
    return host, switch, members


def build(params: Params) -> Story:
    host, switch, members = team_host(params, "10.40.0")
    flapping = members[0]
    span = host.end - host.start
    changes = []
    for k in range(FLAPS):
        down = host.start + span * (2 * k + 1) // (2 * FLAPS + 1)
        up = down + min(3 * SECOND, span // (4 * FLAPS + 2))
        link(host, down, switch, flapping, up=False)
        link(host, up, switch, flapping, up=True)
        changes += [down, up]
    packets = host.healthy_traffic()
    finding = Finding("team-member-flaps", {
        "switch": SWITCH_FRIENDLY, "member": flapping["NicName"], "member_friendly_name": flapping["NicFName"],
        "net_cfg_instance_id": str(flapping["NetCfgInstanceId"]), "disconnects": FLAPS, "reconnects": FLAPS,
        "current_state": "up", "first_change_filetime": changes[0], "last_change_filetime": changes[-1]})
    return host.story([finding], facts={"packets": packets, "drops": [], "stable_member": members[1]["NicFName"]})


SCENARIO = Scenario(
    name="set-team-member-flap",
    title="SET team member flaps: a physical NIC of the switch team drops and returns twice",
    summary="VmSwitch 117/116 (and the LBFO core's 185/184) show one member of SETswitch's team losing its link "
            "and getting it back twice during traffic; the other member stays up.",
    build=build,
    seed=1101,
    hosts=2,
)
