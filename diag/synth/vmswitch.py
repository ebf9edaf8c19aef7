"""Encoders for Microsoft-Windows-Hyper-V-VmSwitch (vmswitch.sys).

Field order: etl-parser's catalogue (generated from a recent manifest) and Microsoft's NetMon
parser for this provider (microsoft/SDN, Diagnostics/VFP_VMSwitch_Parsers, 2015). Names travel as
``<X>NameLen`` u32 + ``<X>Name`` pairs: the internal name (a GUID-like string) and the friendly
name (``FName``), UTF-16LE without a terminator; the NetMon parser reads them as
``UnicodeString(<X>NameLen)``, so the length counts characters, and its port-security flags are
``BOOL`` (4 bytes), which is what is written here (etl-parser types the names as raw bytes and the
flags as one byte each; research notes §4.1 mark the unit UNCONFIRMED). Meanings are inferred from
the field names:

* 5 NIC created; 232 NIC connected to a port (17, the same fields, is a protocol NIC bound); 33 IP-spoofed packets dropped (NetMon parser's name;
  the research notes guessed a VM NIC - port association);
* 19 a NIC unbound from its port; 22 / 24 media disconnected / NIC no longer operational;
* 25 a MAC address moved from one port to another (its text form, ``UnicodeString(MacAddressLen)``
  in the NetMon parser, as the decoder reads it); 55 a NIC dropped a packet (DropReason, the pktmon 0-38 enum);
* 69 / 71 port deleted / port delete complete (etl-parser's revision, with Flags and OwnerService);
* 73 setting a port's VLAN failed (Status); 80 a switch-level policy operation failed (Status,
  PropertyId, InstanceId, Operation: 0 add, 1 set, 3 delete);
* 89 port security settings (AllowMacSpoofing, DHCP/router guard, VirtualSubnetId, ...), 88 the
  same when applying them failed (FailReason);
* 94 an offload policy operation (IovOffloadWeight > 0: SR-IOV) that failed, FailReason 0 "Unknown";
* 197 a VLAN setting failed on a NIC; 230 NVGRE / VXLAN encapsulation offload state of a switch;
* 116 / 117 a switch team (SET) member connected / disconnected (NetMon parser's messages); 184 / 185
  a team member NIC connected / disconnected, as the LBFO core reports it (``DriverObject``, ``Member``:
  NUL-terminated strings in both sources);
* 255 a port's RDMA weight with its NIC (etl-parser only: Status, names, RdmaWeight, FailReason).

Layouts are data (``LAYOUTS``); :func:`encode` packs a payload from field values.
"""

from __future__ import annotations

import uuid

from diag.synth import eventmetadata as em

PROVIDER = uuid.UUID("67dc0d66-3695-47c0-9642-33f76f7bd7ad")
PROVIDER_NAME = "Microsoft-Windows-Hyper-V-VmSwitch"
LEVEL_INFO, LEVEL_ERROR = 4, 2

EVENT_NIC_CREATED = 5
EVENT_NIC_CONNECTED = 232
EVENT_NIC_DISCONNECTED = 19
EVENT_MEDIA_DISCONNECTED = 22
EVENT_NIC_NON_OPERATIONAL = 24
EVENT_MAC_ON_TWO_PORTS = 25
EVENT_IP_SPOOFED_DROPS = 33
EVENT_NIC_DROP = 55
EVENT_PORT_DELETED = 69
EVENT_PORT_DELETE_COMPLETE = 71
EVENT_PORT_VLAN_FAILED = 73
EVENT_SWITCH_POLICY_FAILED = 80
EVENT_PORT_SECURITY_FAILED = 88
EVENT_PORT_SECURITY = 89
EVENT_PORT_OFFLOAD = 94
EVENT_VLAN_FAILED = 197
EVENT_ENCAP_OFFLOAD = 230
EVENT_TEAM_MEMBER_CONNECTED, EVENT_TEAM_MEMBER_DISCONNECTED = 116, 117
EVENT_MEMBER_NIC_CONNECTED, EVENT_MEMBER_NIC_DISCONNECTED = 184, 185
EVENT_PORT_RDMA_WEIGHT = 255

_F = em.Field
_U8, _U32, _BOOL = em.IN_UINT8, em.IN_UINT32, em.IN_BOOLEAN


def _name(prefix: str) -> tuple[em.Field, em.Field]:
    return _F(f"{prefix}Len", _U32), _F(prefix, em.IN_UNICODESTRING, length_field=f"{prefix}Len")


def _names(*prefixes: str) -> tuple[em.Field, ...]:
    return tuple(f for p in prefixes for f in _name(p))


_SECURITY = (
    _F("AllowMacSpoofing", _BOOL), _F("EnableDhcpGuard", _BOOL), _F("EnableRouterGuard", _BOOL),
    _F("MonitorMode", _U32), _F("MonitorSession", _U32), _F("AllowIeeePriorityTag", _BOOL),
    _F("VirtualSubnetId", _U32), _F("AllowTeaming", _BOOL), _F("StormLimit", _U32), _F("DynamicIPAddressLimit", _U32),
    _F("EnableFixSpeed10G", _BOOL),
)


def _layout(event_id: int, fields: tuple[em.Field, ...], level: int = LEVEL_INFO) -> em.EventLayout:
    return em.EventLayout(PROVIDER, PROVIDER_NAME, event_id, fields, level=level)


LAYOUTS: dict[int, em.EventLayout] = {
    layout.event_id: layout
    for layout in (
        _layout(EVENT_NIC_CREATED, _names("NicName", "NicFName")),
        _layout(EVENT_NIC_CONNECTED, _names("NicName", "NicFName", "PortName", "PortFName", "SwitchName",
                                            "SwitchFName")),
        _layout(EVENT_NIC_DISCONNECTED, _names("NicName", "NicFName")),
        _layout(EVENT_MEDIA_DISCONNECTED, _names("NicName", "NicFName")),
        _layout(EVENT_NIC_NON_OPERATIONAL, _names("NicName", "NicFName")),
        _layout(EVENT_MAC_ON_TWO_PORTS, _names("MacAddress", "Port1Name", "Port1FName", "Port2Name", "Port2FName"),
                level=3),
        _layout(EVENT_IP_SPOOFED_DROPS, _names("VMName", "NicName", "NicFName", "PortName", "PortFName", "SwitchName",
                                          "SwitchFName")),
        _layout(EVENT_NIC_DROP, (*_names("NicName", "NicFName", "SwitchName", "SwitchFName"), _F("DropReason", _U32)),
                level=3),
        *(_layout(event_id, (*_names("PortName", "PortFName", "SwitchName", "SwitchFName"), _F("Flags", _U32),
                             _F("OwnerService", _U32)))
          for event_id in (EVENT_PORT_DELETED, EVENT_PORT_DELETE_COMPLETE)),
        _layout(EVENT_PORT_VLAN_FAILED, (_F("Status", _U32), *_names("PortName", "PortFName", "SwitchName",
                                                                     "SwitchFName"), _F("UniqueEvent", _U32)),
                level=LEVEL_ERROR),
        _layout(EVENT_SWITCH_POLICY_FAILED, (_F("Status", _U32), *_names("SwitchName", "SwitchFName"),
                                             _F("PropertyId", em.IN_GUID), _F("InstanceId", em.IN_GUID),
                                             _F("UniqueEvent", _U32), _F("Operation", _U32)), level=LEVEL_ERROR),
        _layout(EVENT_PORT_SECURITY_FAILED, (*_names("PortName", "PortFName", "SwitchName", "SwitchFName"), *_SECURITY,
                                             _F("FailReason", _U32)), level=LEVEL_ERROR),
        _layout(EVENT_PORT_SECURITY, (*_names("PortName", "PortFName", "SwitchName", "SwitchFName"), *_SECURITY)),
        _layout(EVENT_PORT_OFFLOAD, (*_names("PortName", "PortFName", "SwitchName", "SwitchFName"),
                                     _F("IPSecOffloadLimit", _U32), _F("VMQOffloadWeight", _U32),
                                     _F("IovOffloadWeight", _U32), _F("QueuePairs", _U32),
                                     _F("InterruptModeration", _U32), _F("FailReason", _U32))),
        _layout(EVENT_VLAN_FAILED, (_F("VlanID", _U32), *_names("NicName", "NicFName"), _F("FailReason", _U32)),
                level=LEVEL_ERROR),
        *(_layout(event_id, (*_names("SwitchName", "SwitchFName", "NicName", "NicFName"), _F("NicIndex", _U32),
                             _F("NetCfgInstanceId", em.IN_GUID), _F("Status", _U32)), level=level)
          for event_id, level in ((EVENT_TEAM_MEMBER_CONNECTED, LEVEL_INFO), (EVENT_TEAM_MEMBER_DISCONNECTED, 3))),
        *(_layout(event_id, (_F("DriverObject", em.IN_UNICODESTRING), _F("Member", em.IN_UNICODESTRING)), level=level)
          for event_id, level in ((EVENT_MEMBER_NIC_CONNECTED, LEVEL_INFO), (EVENT_MEMBER_NIC_DISCONNECTED, 3))),
        _layout(EVENT_PORT_RDMA_WEIGHT, (_F("Status", _U32), *_names("PortName", "PortFName", "NicName", "NicFName"),
                                         _F("RdmaWeight", _U32), _F("FailReason", _U32))),
        _layout(EVENT_ENCAP_OFFLOAD, (*_names("SwitchName", "SwitchFriendlyName"), _F("NvgreEnabled", _U8),
                                      _F("VxLanEnabled", _U8))),  # after the NetMon parser's range: as etl-parser
    )
}

_SECURITY_DEFAULTS = {
    "AllowMacSpoofing": 0, "EnableDhcpGuard": 0, "EnableRouterGuard": 0, "MonitorMode": 0, "MonitorSession": 0,
    "AllowIeeePriorityTag": 0, "VirtualSubnetId": 0, "AllowTeaming": 0, "StormLimit": 0,
    "DynamicIPAddressLimit": 0, "EnableFixSpeed10G": 0,
}


def encode(event_id: int, **values: object) -> bytes:
    """Pack one event from field values; length fields are filled in (characters for names)."""
    if event_id in (EVENT_PORT_SECURITY, EVENT_PORT_SECURITY_FAILED):
        values = {**_SECURITY_DEFAULTS, **values}
    return em.encode_fields(LAYOUTS[event_id], values)


def level_of(event_id: int) -> int:
    return LAYOUTS[event_id].level
