"""Hyper-V-VmSwitch events → switches, ports, NICs, MAC moves, drops, offload settings."""

from __future__ import annotations

from typing import Any

from diag.facts.evidence import Bounded, Cuts, Span, keep, pointer, when
from diag.facts.network import MacMove, Offload, ProviderDrop, Segment, TeamMember, VNic, VPort, VSwitch
from diag.facts.tables import value_name

PROVIDER_NAME = "Hyper-V-VmSwitch"
MAX_OBJECTS = 1024

SWITCH_STATES = {9: "created", 62: "deleted", 66: "deleted"}
NIC_BOUND_EVENTS = (17, 232)  # a protocol NIC bound to a port / a NIC connected to a port
PORT_STATES = {67: "created", 69: "deleted", 71: "deleted", 17: "connected", 232: "connected"}
NIC_STATES = {21: ("media_connected", True), 22: ("media_connected", False),
              125: ("media_connected", True), 126: ("media_connected", False),  # a switch miniport's media
              23: ("operational", True), 24: ("operational", False)}
DROP_EVENTS = {53: "qos", 54: "in", 55: "out", 33: "in", 36: "unknown", 59: "out", 60: "unknown"}
# team member link events: (team, link up); 184/185 come from the LBFO core (NetMon parser's SYS_EVENT_NIC_*)
MEMBER_LINK = {116: ("SET", True), 117: ("SET", False), 184: ("LBFO", True), 185: ("LBFO", False)}
VLAN_FAILURE_EVENTS = (73, 95)  # counted as VLAN failures by their handler, not again as policy failures


class VSwitchCollector:
    def __init__(self) -> None:
        self.cuts = Cuts()  # what capped list fields of the facts left out
        self.switches: Bounded = Bounded(MAX_OBJECTS)
        self.ports: Bounded = Bounded(MAX_OBJECTS)
        self.nics: Bounded = Bounded(MAX_OBJECTS)
        self.mac_moves: Bounded = Bounded(MAX_OBJECTS)
        self.drops: Bounded = Bounded(MAX_OBJECTS)
        self.offloads: Bounded = Bounded(MAX_OBJECTS)
        self.members: Bounded = Bounded(MAX_OBJECTS)
        self.member_aliases: dict[str, str] = {}  # a SET member's NetCfgInstanceId -> its key in ``members``
        self.vsids: dict[int, set[str]] = {}

    def event(self, event_id: int, name: str, fields: dict[str, Any], record: Any) -> None:
        ev = pointer(record, PROVIDER_NAME, event_id, event=name)
        switch = self._switch(fields, ev)
        port = self._port(fields, ev)
        nic = self._nic(fields, ev)
        if event_id in SWITCH_STATES and switch is not None:
            switch["state"] = SWITCH_STATES[event_id]
        if event_id in PORT_STATES and port is not None:
            port["state"] = PORT_STATES[event_id]
            if event_id in NIC_BOUND_EVENTS and nic is not None:
                port["nic"] = fields.get("nic_name")
        if event_id in NIC_STATES and nic is not None:
            attribute, value = NIC_STATES[event_id]
            nic[attribute] = value
        if fields.get("status") and ("Fail" in name or "Veto" in name) and event_id not in VLAN_FAILURE_EVENTS:
            target = port if port is not None else nic if nic is not None else switch
            if target is not None:
                target["failures"] += 1
                target["last_failure"] = f"{name} (status 0x{fields['status']:08x})"
        handler = _HANDLERS.get(event_id)
        if handler is not None:
            handler(self, fields, record, ev, switch, port, nic)

    # -- objects -----------------------------------------------------------------------------------
    def _switch(self, fields: dict, ev: dict) -> dict | None:
        name = fields.get("switch_name")
        if not name:
            return None
        switch = self.switches.slot(name, lambda: {"friendly": None, "state": "seen", "ports": set(), "failures": 0,
                                                   "last_failure": None, "nvgre": None, "vxlan": None,
                                                   "forwarding": None, "members": set(), "evidence": []})
        if switch is not None:
            switch["friendly"] = fields.get("switch_friendly_name") or switch["friendly"]
            keep(switch["evidence"], ev)
        return switch

    def _port(self, fields: dict, ev: dict) -> dict | None:
        name = fields.get("port_name")
        if not name:
            return None
        port = self.ports.slot(name, lambda: {"friendly": None, "switch": None, "nic": None, "nic_friendly": None,
                                              "vm": None, "state": "seen", "security": {}, "acl_rules": 0,
                                              "vlan_failures": 0, "failures": 0, "last_failure": None,
                                              "offload": {}, "evidence": []})
        if port is not None:
            port["friendly"] = fields.get("port_friendly_name") or port["friendly"]
            port["switch"] = fields.get("switch_name") or port["switch"]
            port["nic"] = fields.get("nic_name") or port["nic"]
            port["nic_friendly"] = fields.get("nic_friendly_name") or port["nic_friendly"]
            port["vm"] = fields.get("vm_name") or port["vm"]
            keep(port["evidence"], ev)
            if port["switch"]:
                switch = self.switches.get(port["switch"])
                if switch is not None:
                    switch["ports"].add(name)
        return port

    def _nic(self, fields: dict, ev: dict) -> dict | None:
        name = fields.get("nic_name")
        if not name:
            return None
        nic = self.nics.slot(name, lambda: {"friendly": None, "switch": None, "port": None, "operational": None,
                                            "media_connected": None, "macs_prevented": 0, "vlan_filter_failures": 0,
                                            "failures": 0, "last_failure": None, "evidence": []})
        if nic is not None:
            nic["friendly"] = fields.get("nic_friendly_name") or nic["friendly"]
            nic["switch"] = fields.get("switch_name") or nic["switch"]
            nic["port"] = fields.get("port_name") or nic["port"]
            keep(nic["evidence"], ev)
        return nic

    def _member(self, fields: dict, team: str, ev: dict) -> dict | None:
        """A team member by its NIC name (SET) or the LBFO core's member string, which may be a SET
        member's NetCfgInstanceId: then both sources feed one member."""
        if team == "SET":
            key = fields.get("nic_name")
            if key and fields.get("net_cfg_instance_id"):
                self.member_aliases.setdefault(_guid_key(fields["net_cfg_instance_id"]), key)
        else:
            key = fields.get("member")
            key = self.member_aliases.get(_guid_key(key or ""), key)
        if not key:
            return None
        member = self.members.slot(key, lambda: {
            "friendly": None, "switch": None, "switch_friendly": None, "team": team, "guid": None, "nic_index": None,
            "connects": 0, "disconnects": 0, "reconnects": 0, "churn": 0, "changes": Span(), "state": "unknown",
            "status": None, "evidence": []})
        if member is not None:
            member["friendly"] = fields.get("nic_friendly_name") or member["friendly"]
            member["switch"] = fields.get("switch_name") or member["switch"]
            member["switch_friendly"] = fields.get("switch_friendly_name") or member["switch_friendly"]
            member["guid"] = fields.get("net_cfg_instance_id") or member["guid"]
            member["nic_index"] = fields.get("nic_index", member["nic_index"])
            keep(member["evidence"], ev)
        return member

    # -- facts -------------------------------------------------------------------------------------
    def facts(self) -> list:
        out: list = []
        for name, s in self.switches.items():
            out.append(VSwitch(switch_name=name, friendly_name=s["friendly"], state=s["state"], ports=len(s["ports"]),
                               nvgre_offload=s["nvgre"], vxlan_offload=s["vxlan"], forwarding_extension=s["forwarding"],
                               team_members=len(s["members"]), failures=s["failures"], last_failure=s["last_failure"],
                               evidence=s["evidence"]))
        for name, p in self.ports.items():
            sec = p["security"]
            out.append(VPort(port_name=name, port_friendly_name=p["friendly"], switch_name=p["switch"],
                             nic_name=p["nic"], nic_friendly_name=p["nic_friendly"], vm_name=p["vm"], state=p["state"],
                             allow_mac_spoofing=sec.get("allow_mac_spoofing"), dhcp_guard=sec.get("enable_dhcp_guard"),
                             router_guard=sec.get("enable_router_guard"), virtual_subnet_id=sec.get("virtual_subnet_id"),
                             storm_limit=sec.get("storm_limit"), acl_rules=p["acl_rules"],
                             vmq_weight_requested=p["offload"].get("vmq_offload_weight"),
                             iov_weight_requested=p["offload"].get("iov_offload_weight"),
                             rdma_weight=p["offload"].get("rdma_weight"), vlan_failures=p["vlan_failures"],
                             failures=p["failures"], last_failure=p["last_failure"], evidence=p["evidence"]))
        for name, n in self.nics.items():
            out.append(VNic(nic_name=name, nic_friendly_name=n["friendly"], switch_name=n["switch"], port_name=n["port"],
                            operational=n["operational"], media_connected=n["media_connected"],
                            macs_prevented=n["macs_prevented"], vlan_filter_failures=n["vlan_filter_failures"],
                            failures=n["failures"], last_failure=n["last_failure"], evidence=n["evidence"]))
        for name, m in self.members.items():
            out.append(TeamMember(
                member_name=name, member_friendly_name=m["friendly"], switch_name=m["switch"],
                switch_friendly_name=m["switch_friendly"], team=m["team"], net_cfg_instance_id=m["guid"],
                nic_index=m["nic_index"], connects=m["connects"], disconnects=m["disconnects"],
                reconnects=m["reconnects"], state_changes=m["changes"].count, lacp_churn=m["churn"],
                first_change=when(m["changes"].first), last_change=when(m["changes"].last), current_state=m["state"],
                last_status=m["status"], evidence=m["evidence"]))
        for (mac, src, dst, prevented), (span, evidence) in self.mac_moves.items():
            out.append(MacMove(mac=mac, from_port=src, to_port=dst, prevented=prevented, count=span.count,
                               first_seen=when(span.first), last_seen=when(span.last), evidence=evidence))
        for (where, direction, code, reason), (span, evidence) in self.drops.items():
            out.append(ProviderDrop(provider=PROVIDER_NAME, where=where, direction=direction, reason_code=code,
                                    reason_name=reason, count=span.count, first_seen=when(span.first),
                                    last_seen=when(span.last), evidence=evidence))
        for (where, offload), (value, count, evidence) in self.offloads.items():
            out.append(Offload(where=where, offload=offload, value=value, count=count, source=PROVIDER_NAME,
                               evidence=evidence))
        return out

    def segments(self) -> list[Segment]:
        return [Segment(segment_type="vsid", value=vsid, seen_on=self.cuts.cap(sorted(ports)), sources=[PROVIDER_NAME])
                for vsid, ports in sorted(self.vsids.items())]


def _where(fields: dict, *keys: str) -> str:
    for key in keys:
        friendly, name = fields.get(f"{key}_friendly_name"), fields.get(f"{key}_name")
        if friendly or name:
            return f"{friendly} ({name})" if friendly and name and friendly != name else (friendly or name)
    return "vSwitch"


def _count(table: Bounded, key: tuple, record: Any, ev: dict) -> None:
    entry = table.slot(key, lambda: (Span(), []))
    if entry is not None:
        entry[0].add(record.filetime)
        keep(entry[1], ev)


def _drop(self: VSwitchCollector, event_id: int, fields: dict, record: Any, ev: dict) -> None:
    code = fields.get("drop_reason")
    if event_id == 53:
        reason = value_name("vmswitch", "qos_drop_reason", code)
    elif event_id == 36:
        code, reason = None, f"port ACL {fields.get('acl_name') or ''}".strip()
    elif event_id == 33:
        code, reason = None, "spoofed IP address"
    elif event_id == 59:
        code, reason = None, f"delivery vetoed by extension {fields.get('extension_name') or '?'}"
    elif event_id == 60:
        code, reason = None, f"dropped by extension {fields.get('extension_friendly_name') or fields.get('extension_id')}: {fields.get('reason') or '?'}"
    else:
        reason = value_name("vmswitch", "packet_drop_reason", code)
    where = _where(fields, "port", "nic", "source_nic", "switch")
    _count(self.drops, (where, DROP_EVENTS[event_id], code, reason), record, ev)


def _mac_move(self: VSwitchCollector, event_id: int, fields: dict, record: Any, ev: dict) -> None:
    key = (fields["mac_address"], _where(fields, "port1"), _where(fields, "port2"), event_id == 28)
    _count(self.mac_moves, key, record, ev)


def _security(self, fields, record, ev, switch, port, nic) -> None:
    if port is None:
        return
    if "fail_reason" in fields:  # 88: the settings it carries were refused; the port keeps the ones it had
        port["failures"] += 1
        port["last_failure"] = f"port security: {value_name('vmswitch', 'policy_fail_reason', fields['fail_reason'])}"
        return
    port["security"] = {k: fields[k] for k in ("allow_mac_spoofing", "enable_dhcp_guard", "enable_router_guard",
                                                "virtual_subnet_id", "storm_limit") if k in fields}
    vsid = fields.get("virtual_subnet_id")
    if vsid:
        self.vsids.setdefault(vsid, set()).add(fields.get("port_friendly_name") or fields["port_name"])


def _acl(self, fields, record, ev, switch, port, nic) -> None:
    if port is None:
        return
    if "fail_reason" in fields:
        port["failures"] += 1
        port["last_failure"] = f"port ACL: {value_name('vmswitch', 'policy_fail_reason', fields['fail_reason'])}"
    else:
        port["acl_rules"] += 1


def _offload_policy(self, fields, record, ev, switch, port, nic) -> None:
    """94 is "Failed to complete offload policy operation" (the NetMon parser's message), whatever its FailReason
    (0 is "Unknown"): the weights it carries were asked for and not applied."""
    if port is None:
        return
    port["offload"].update({k: fields[k] for k in ("vmq_offload_weight", "iov_offload_weight", "ipsec_offload_limit")})
    port["failures"] += 1
    port["last_failure"] = (f"offload policy (IovWeight {fields['iov_offload_weight']}, VmqWeight "
                            f"{fields['vmq_offload_weight']}): "
                            f"{value_name('vmswitch', 'policy_fail_reason', fields['fail_reason'])}")


def _offload(self: VSwitchCollector, where: str, what: str, value: Any, ev: dict) -> None:
    entry = self.offloads.slot((where, what), lambda: [value, 0, []])
    if entry is not None:
        entry[0], entry[1] = value, entry[1] + 1
        keep(entry[2], ev)


def _encapsulation(self, fields, record, ev, switch, port, nic) -> None:
    if switch is None:
        return
    switch["nvgre"], switch["vxlan"] = fields["nvgre_enabled"], fields["vxlan_enabled"]
    where = _where(fields, "switch")
    _offload(self, where, "nvgre encapsulation", fields["nvgre_enabled"], ev)
    _offload(self, where, "vxlan encapsulation", fields["vxlan_enabled"], ev)


def _vlan_failure(self, fields, record, ev, switch, port, nic) -> None:
    if port is not None:
        port["vlan_failures"] += 1
        reason = fields.get("fail_reason")
        port["last_failure"] = "VLAN: " + (value_name("vmswitch", "policy_fail_reason", reason) if reason is not None
                                           else f"status 0x{fields.get('status', 0):08x}")


def _vlan_filter(self, fields, record, ev, switch, port, nic) -> None:
    if nic is not None:
        nic["vlan_filter_failures"] += 1
        reason = value_name("vmswitch", "set_filter_fail_reason", fields["fail_reason"])
        nic["last_failure"] = f"MAC/VLAN filter for VLAN {fields['vlan_id']} failed: {reason}"


def _mac_prevented(self, fields, record, ev, switch, port, nic) -> None:
    if nic is not None:
        nic["macs_prevented"] += 1


def _forwarding(self, fields, record, ev, switch, port, nic) -> None:
    if switch is not None:
        switch["forwarding"] = ev["event_id"] == 42  # 42: a forwarding extension took over forwarding


def _team(self, fields, record, ev, switch, port, nic) -> None:
    if switch is not None and ev["event_id"] == 116:
        switch["members"].add(fields.get("nic_name"))
    elif switch is not None and ev["event_id"] == 117:
        switch["members"].discard(fields.get("nic_name"))
    team, up = MEMBER_LINK[ev["event_id"]]
    member = self._member(fields, team, ev)
    if member is not None:
        _member_link(member, up, record.filetime, fields.get("status"))


def _member_link(member: dict, up: bool, filetime: int | None, status: int | None) -> None:
    """One link report. The first report of a member that is up is its starting state, not a change;
    a report of the state the member is already in changes nothing."""
    member["status"] = status if status is not None else member["status"]
    new = "up" if up else "down"
    if new == member["state"]:
        return
    member["connects"] += up
    if up and member["state"] == "unknown":
        member["state"] = new
        return
    member["disconnects" if new == "down" else "reconnects"] += 1
    member["state"] = new
    member["changes"].add(filetime)


def _lacp_churn(self, fields, record, ev, switch, port, nic) -> None:
    member = self._member(fields, "LBFO", ev)
    if member is not None:
        member["churn"] += 1


def _guid_key(text: str) -> str:
    return text.strip().strip("{}").lower()


def _rdma_weight(self, fields, record, ev, switch, port, nic) -> None:
    """A port's RDMA weight (VmSwitch 255-257): applied (FailReason 0, status 0) or refused."""
    if port is None:
        return
    weight, reason, status = fields["rdma_weight"], fields["fail_reason"], fields["status"]
    if reason or status:
        port["failures"] += 1
        port["last_failure"] = f"RDMA weight {weight} not applied: FailReason {reason}, status 0x{status:08x}"
        return
    port["offload"]["rdma_weight"] = weight
    _offload(self, _where(fields, "nic", "port"), "rdma weight", weight, ev)


def _wrap(fn):
    return lambda self, fields, record, ev, switch, port, nic: fn(self, ev["event_id"], fields, record, ev)


_HANDLERS = {
    **{event_id: _wrap(_drop) for event_id in DROP_EVENTS},
    25: _wrap(_mac_move), 28: _wrap(_mac_move),
    88: _security, 89: _security, 90: _acl, 91: _acl, 94: _offload_policy, 230: _encapsulation,
    73: _vlan_failure, 95: _vlan_failure, 197: _vlan_filter, 30: _mac_prevented,
    42: _forwarding, 43: _forwarding, 116: _team, 117: _team, 184: _team, 185: _team, 187: _lacp_churn,
    255: _rdma_weight, 256: _rdma_weight, 257: _rdma_weight,
}
