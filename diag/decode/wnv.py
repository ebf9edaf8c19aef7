"""Microsoft-Windows-Wnv {3AD15A04-74F1-4DCA-B226-AFF89085A05A} (wnv.sys, HNVv1 network virtualization).

Layouts and value maps: the NetMon parser Microsoft published for this provider (microsoft/SDN,
Diagnostics/etl_wnvinf.npl, "wnvinf.man", 2013), events 1001-1023: virtual and physical routes,
locator addresses and records (CA/PA mappings), lookup failures and successes, packet drops, IPsec
task offload, dynamic-IP learning and address-resolution packets. Fields are read in the order the
parser declares them (its message strings list them in another order). etl-parser has no layout
for this provider. No real sample carries it.
"""

from __future__ import annotations

from diag.decode.fields import Layout, ProviderLayouts

PROVIDER = "3ad15a04-74f1-4dca-b226-aff89085a05a"
NAME = "Microsoft-Windows-Wnv"

_RESULT = (("failure_reason", "u32"), ("status", "u32"))
_ROUTE = (("destination_prefix", "wstr"), ("prefix_length", "u32"), ("next_hop", "wstr"),
          ("routing_domain_id", "guid"), ("virtual_subnet_id", "u32"), ("metric", "u32")) + _RESULT
_LOCATOR_ADDRESS = (("locator_address", "cstr"), ("onlink_prefix_length", "u32"), ("interface_luid", "u64"),
                    ("vlan_id", "u16")) + _RESULT
_LOCATOR_RECORD = (("customer_address", "cstr"), ("provider_address", "cstr"), ("virtual_subnet_id", "u32"),
                   ("customer_id", "guid"), ("customer_mac", "mac6"), ("use_vm_mac", "bool32"),
                   ("description", "wstr"), ("translation_method", "u32")) + _RESULT + (
                   ("modify_flags", "u32"), ("record_type", "u32"))
_LOOKUP = (("source_ip_in_packet", "cstr"), ("destination_ip_in_packet", "cstr"), ("source_ip_in_record", "cstr"),
           ("destination_ip_in_record", "cstr"), ("customer_next_hop", "cstr"), ("provider_next_hop", "cstr"),
           ("lookup_failure", "u32"), ("direction", "u32"), ("source_ca_mac", "mac6"), ("destination_ca_mac", "mac6"),
           ("source_ca_mac_in_record", "mac6"), ("destination_ca_mac_in_record", "mac6"),
           ("outer_source_ip", "cstr"), ("outer_destination_ip", "cstr"), ("virtual_subnet_id", "u32"))
_DROP = (("source_ca", "cstr"), ("destination_ca", "cstr"), ("source_pa", "cstr"), ("destination_pa", "cstr"),
         ("drop_reason", "u32"), ("frame_type", "u32"), ("transport_protocol", "u8"), ("source_ca_mac", "mac6"),
         ("destination_ca_mac", "mac6"), ("direction", "u32"), ("virtual_subnet_id", "u32"), ("gre_encap", "bool32"))
_DYNAMIC_IP = (("customer_address", "cstr"), ("virtual_subnet_id", "u32"), ("customer_mac", "mac6"),
               ("max_dynamic_addresses", "u32"), ("current_dynamic_addresses", "u32"))

LAYOUTS: dict[tuple[int, int], Layout] = {
    (1001, 0): Layout("VirtualRouteCreated", _ROUTE),
    (1002, 0): Layout("VirtualRouteDeleted", _ROUTE),
    (1003, 0): Layout("VirtualRouteModified", _ROUTE),
    (1004, 0): Layout("LocatorAddressCreated", _LOCATOR_ADDRESS),
    (1004, 1): Layout("LocatorAddressCreated", _LOCATOR_ADDRESS + (("provider_mac", "mac6"),)),
    (1005, 0): Layout("LocatorAddressDeleted", _LOCATOR_ADDRESS),
    (1005, 1): Layout("LocatorAddressDeleted", _LOCATOR_ADDRESS + (("provider_mac", "mac6"),)),
    (1006, 0): Layout("LocatorRecordCreated", _LOCATOR_RECORD),
    (1007, 0): Layout("LocatorRecordDeleted", _LOCATOR_RECORD),
    (1008, 0): Layout("LocatorRecordModified", _LOCATOR_RECORD),
    (1009, 0): Layout("NotificationRegistered", (("notification_type", "u32"),) + _RESULT),
    (1010, 0): Layout("LookupFailed", _LOOKUP),
    (1011, 0): Layout("LookupSucceeded", _LOOKUP),
    (1012, 0): Layout("PacketDropped", _DROP),
    (1013, 0): Layout("IpsecSaTranslated", (("source_aa", "wstr"), ("destination_aa", "wstr"), ("source_pa", "wstr"),
                                            ("destination_pa", "wstr"), ("spi", "u32"))),
    (1014, 0): Layout("IpsecOffloadFailed", (("source_aa", "wstr"), ("destination_aa", "wstr"),
                                             ("failure_reason", "u32"))),
    (1015, 0): Layout("IpsecSaUploaded", (("reason", "u32"),)),
    (1016, 0): Layout("LocatorAddressModified", _LOCATOR_ADDRESS),
    (1016, 1): Layout("LocatorAddressModified", _LOCATOR_ADDRESS + (("provider_mac", "mac6"),)),
    (1017, 0): Layout("PhysicalRouteCreated", _ROUTE),
    (1018, 0): Layout("PhysicalRouteDeleted", _ROUTE),
    (1019, 0): Layout("PhysicalRouteModified", _ROUTE),
    (1020, 0): Layout("DynamicLocatorRecord", (("event_type", "u32"), ("customer_address", "cstr"),
                                               ("virtual_subnet_id", "u32"), ("customer_mac", "mac6"),
                                               ("provider_address", "cstr"), ("is_local_ca", "bool32"),
                                               ("in_gateway_mode", "bool32"), ("unusable", "bool32"),
                                               ("unsynchronized", "bool32"))),
    (1021, 0): Layout("DynamicIpThrottled", _DYNAMIC_IP),
    (1022, 0): Layout("DynamicIpThresholdNear", _DYNAMIC_IP),
    (1023, 0): Layout("AddressResolutionPacket", (("source_address", "cstr"), ("destination_address", "cstr"),
                                                  ("target_address", "cstr"), ("packet_type", "u32"),
                                                  ("packet_action", "u32"), ("source_mac", "mac6"),
                                                  ("virtual_subnet_id", "u32"), ("ca_space", "bool32"),
                                                  ("direction", "u32"))),
}
EVENT_LOOKUP_FAILED, EVENT_LOOKUP_SUCCEEDED, EVENT_PACKET_DROPPED = 1010, 1011, 1012
DIRECTIONS = {0: "in", 1: "out"}  # WNV_PACKET_DIRECTION: 0 Inbound, 1 Outbound

_PROVIDER = ProviderLayouts(LAYOUTS, NAME)
EVENT_NAMES = {event_id: _PROVIDER.event_name(event_id, version) for event_id, version in LAYOUTS}


event_name = _PROVIDER.event_name
decode = _PROVIDER.decode  # (event id, version, payload, pointer size, OS build) -> fields, None, or WireError
