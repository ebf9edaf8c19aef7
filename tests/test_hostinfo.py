"""Host information: ipconfig /allcompartments [/all] and Get-NetIPAddress -IncludeAllCompartments,
as text (the exact formats of the seed document, then variants) and as ConvertTo-Json output.

Expected values are read off the sample text by the test author, not from wnvdiag's output.
"""

from __future__ import annotations

import json

import pytest

from diag.errors import BadInputError
from diag.hostinfo import load_host_info

SEED_IPCONFIG = """ipconfig /allcompartments

=============================================================
Network Information for Compartment 2
=============================================================

Ethernet adapter vEthernet (Container NIC c337484d):

Connection-specific DNS Suffix . : Contoso.com
Link-local IPv6 Address . . . . . : fe80::297c:2597:40d2:59ab%16
IPv4 Address. . . . . . . . . . . : 172.23.181.37
Subnet Mask . . . . . . . . . . . : 255.255.240.0
Default Gateway . . . . . . . . . : 172.23.176.1
"""

SEED_NETIP = """IPAddress         : 172.23.181.37
InterfaceIndex    : 16
InterfaceAlias    : vEthernet (Container NIC c337484d)
AddressFamily     : IPv4
Type              : Unicast
PrefixLength      : 20
PrefixOrigin      : Manual
SuffixOrigin      : Manual
AddressState      : Preferred
ValidLifetime     : Infinite ([TimeSpan]::MaxValue)
PreferredLifetime : Infinite ([TimeSpan]::MaxValue)
SkipAsSource      : False
PolicyStore       : ActiveStore
"""

ALL_COMPARTMENTS = """
Windows IP Configuration

   Host Name . . . . . . . . . . . . : CONTAINERHOST
   Primary Dns Suffix  . . . . . . . : corp.contoso.com
   Node Type . . . . . . . . . . . . : Hybrid
   IP Routing Enabled. . . . . . . . : No
   WINS Proxy Enabled. . . . . . . . : No
   DNS Suffix Search List. . . . . . : corp.contoso.com

==============================================================================
Network Information for Compartment 1 (ACTIVE)
==============================================================================

Ethernet adapter vEthernet (nat):

   Connection-specific DNS Suffix  . :
   Description . . . . . . . . . . . : Hyper-V Virtual Ethernet Adapter #2
   Physical Address. . . . . . . . . : 00-15-5D-8A-41-07
   DHCP Enabled. . . . . . . . . . . : No
   Autoconfiguration Enabled . . . . : Yes
   Link-local IPv6 Address . . . . . : fe80::d1c4:1e2b:9f3a:6c10%9(Preferred)
   IPv4 Address. . . . . . . . . . . : 172.30.16.1(Preferred)
   Subnet Mask . . . . . . . . . . . : 255.255.240.0
   Default Gateway . . . . . . . . . :
   DHCPv6 IAID . . . . . . . . . . . : 738203997
   DNS Servers . . . . . . . . . . . : fec0:0:0:ffff::1%1
                                       fec0:0:0:ffff::2%1
   NetBIOS over Tcpip. . . . . . . . : Enabled

Ethernet adapter Ethernet:

   Connection-specific DNS Suffix  . : corp.contoso.com
   Description . . . . . . . . . . . : Microsoft Hyper-V Network Adapter
   Physical Address. . . . . . . . . : 00-15-5D-00-2C-01
   DHCP Enabled. . . . . . . . . . . : Yes
   IPv6 Address. . . . . . . . . . . : 2001:db8:10::25(Preferred)
   Link-local IPv6 Address . . . . . : fe80::a8b1:2c3d:4e5f:6071%5(Preferred)
   IPv4 Address. . . . . . . . . . . : 10.20.30.40(Preferred)
   Subnet Mask . . . . . . . . . . . : 255.255.255.0
   Lease Obtained. . . . . . . . . . : Tuesday, May 14, 2024 9:12:03 AM
   Lease Expires . . . . . . . . . . : Wednesday, May 22, 2024 9:12:03 AM
   Default Gateway . . . . . . . . . : fe80::1%5
                                       10.20.30.1
   DHCP Server . . . . . . . . . . . : 10.20.30.2

Tunnel adapter isatap.corp.contoso.com:

   Media State . . . . . . . . . . . : Media disconnected
   Connection-specific DNS Suffix  . : corp.contoso.com

==============================================================================
Network Information for Compartment 3
==============================================================================

Ethernet adapter vEthernet (Container NIC 5a1e0f92):

   Connection-specific DNS Suffix  . :
   Link-local IPv6 Address . . . . . : fe80::4c2:b7ff:fe11:2233%23(Preferred)
   IPv4 Address. . . . . . . . . . . : 172.30.16.5(Preferred)
   Subnet Mask . . . . . . . . . . . : 255.255.240.0
   Default Gateway . . . . . . . . . : 172.30.16.1
"""


NETROUTE = """PS C:\\> Get-NetRoute -IncludeAllCompartments -AddressFamily IPv4

ifIndex DestinationPrefix                              NextHop                                  RouteMetric ifMetric PolicyStore
------- -----------------                              -------                                  ----------- -------- -----------
23      172.30.24.0/21                                 172.30.16.1                                      256 15       ActiveStore
23      172.30.16.0/20                                 0.0.0.0                                          256 15       ActiveStore
9       0.0.0.0/0                                      172.30.16.254                                      0 15       ActiveStore
"""


def write(tmp_path, name: str, text: str, encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def error_of(tmp_path, text: str, name: str = "host.txt") -> str:
    path = write(tmp_path, name, text)
    with pytest.raises(BadInputError) as info:
        load_host_info([path])
    return str(info.value)


def test_exact_seed_formats_link_into_one_address(tmp_path):
    info = load_host_info([write(tmp_path, "ipconfig.txt", SEED_IPCONFIG), write(tmp_path, "netip.txt", SEED_NETIP)])
    (iface,) = info.interfaces
    assert (iface.alias, iface.adapter_type, iface.if_index, iface.compartment_id, iface.dns_suffix, iface.gateways) == \
        ("vEthernet (Container NIC c337484d)", "Ethernet", 16, 2, "Contoso.com", ["172.23.176.1"])
    addresses = {a.address: a for a in info.addresses}
    assert set(addresses) == {"172.23.181.37", "fe80::297c:2597:40d2:59ab"}
    v4 = addresses["172.23.181.37"]
    assert (v4.prefix_length, v4.if_index, v4.compartment_id, v4.state) == (20, 16, 2, "Preferred")
    assert v4.source == f"{tmp_path / 'ipconfig.txt'}:11; {tmp_path / 'netip.txt'}:1"
    assert info.compartments == [2]


def test_the_seed_document_with_both_commands_in_one_file(tmp_path):
    text = SEED_IPCONFIG + "\nGet-NetIPAddress -IncludeAllCompartments | where InterfaceAlias -match \u201ccontainer\u201d\n\n" + SEED_NETIP
    info = load_host_info([write(tmp_path, "case.txt", text)])
    assert {(a.address, a.compartment_id, a.prefix_length) for a in info.addresses} == \
        {("172.23.181.37", 2, 20), ("fe80::297c:2597:40d2:59ab", 2, None)}


def test_all_compartments_all_with_ipv6_gateways_and_dns_continuations(tmp_path):
    info = load_host_info([write(tmp_path, "all.txt", ALL_COMPARTMENTS)])
    ifaces = {i.alias: i for i in info.interfaces}
    assert set(ifaces) == {"vEthernet (nat)", "Ethernet", "isatap.corp.contoso.com", "vEthernet (Container NIC 5a1e0f92)"}
    nat = ifaces["vEthernet (nat)"]
    assert (nat.if_index, nat.compartment_id, nat.mac, nat.dhcp_enabled, nat.gateways, nat.dns_servers) == \
        (9, 1, "00-15-5D-8A-41-07", False, [], ["fec0:0:0:ffff::1", "fec0:0:0:ffff::2"])
    eth = ifaces["Ethernet"]
    assert (eth.if_index, eth.gateways, eth.dhcp_enabled) == (5, ["fe80::1", "10.20.30.1"], True)
    assert ifaces["isatap.corp.contoso.com"].media_disconnected and ifaces["isatap.corp.contoso.com"].adapter_type == "Tunnel"
    container = ifaces["vEthernet (Container NIC 5a1e0f92)"]
    assert (container.if_index, container.compartment_id) == (23, 3)
    addresses = {a.address: a for a in info.addresses}
    assert (addresses["2001:db8:10::25"].family, addresses["2001:db8:10::25"].state) == ("IPv6", "Preferred")
    assert (addresses["10.20.30.40"].prefix_length, addresses["10.20.30.40"].if_index) == (24, 5)
    assert (addresses["172.30.16.5"].compartment_id, addresses["172.30.16.5"].prefix_length) == (3, 20)
    assert info.compartments == [1, 3] and info.warnings == []


def test_netipaddress_text_ipv6_missing_fields_and_wrapped_values(tmp_path):
    text = ("IPAddress         : fe80::4c2:b7ff:fe11:2233%23\nInterfaceIndex    : 23\n"
            "InterfaceAlias    : vEthernet (Container NIC\n                    5a1e0f92)\nAddressFamily     : IPv6\n"
            "AddressState      : Preferred\n\nIPAddress         : 172.30.16.5\nAddressFamily     : IPv4\n")
    info = load_host_info([write(tmp_path, "netip.txt", text)])
    first, second = info.addresses
    assert (first.address, first.if_index, first.interface_alias, first.prefix_length) == \
        ("fe80::4c2:b7ff:fe11:2233", 23, "vEthernet (Container NIC5a1e0f92)", None)
    assert (second.address, second.if_index, second.prefix_length, second.state) == ("172.30.16.5", None, None, None)


def test_convertto_json_of_get_netipaddress(tmp_path):
    doc = [{"IPAddress": "172.30.16.5", "InterfaceIndex": 23, "InterfaceAlias": "vEthernet (Container NIC 5a1e0f92)",
            "AddressFamily": 2, "Type": 1, "PrefixLength": 20, "PrefixOrigin": 1, "SuffixOrigin": 1, "AddressState": 4,
            "ValidLifetime": {"Ticks": 9223372036854775807, "Days": 10675199}, "SkipAsSource": False,
            "PSComputerName": None, "CimClass": "ROOT/StandardCimv2:MSFT_NetIPAddress",
            "CimInstanceProperties": ["Caption", "Description"]},
           {"IPAddress": "fd00::5", "InterfaceIndex": 23, "AddressFamily": 23, "PrefixLength": 64, "AddressState": 1}]
    path = write(tmp_path, "netip.json", "\ufeff" + json.dumps(doc, indent=4), "utf-8")
    info = load_host_info([path, write(tmp_path, "ipconfig.txt", ALL_COMPARTMENTS)])
    addresses = {a.address: a for a in info.addresses if a.if_index == 23}
    # the JSON record came first, so its origin (PrefixOrigin 1, Manual) stands; ipconfig adds the compartment
    assert (addresses["172.30.16.5"].state, addresses["172.30.16.5"].origin, addresses["172.30.16.5"].compartment_id) == \
        ("Preferred", "Manual", 3)
    assert (addresses["fd00::5"].family, addresses["fd00::5"].state, addresses["fd00::5"].compartment_id) == \
        ("IPv6", "Tentative", 3)


def test_convertto_json_of_ipconfig_and_a_single_object(tmp_path):
    lines = SEED_IPCONFIG.splitlines()[1:]
    info = load_host_info([write(tmp_path, "ipconfig.json", json.dumps(lines, indent=2)),
                           write(tmp_path, "one.json", json.dumps({"IPAddress": "10.1.2.3", "InterfaceIndex": 4,
                                                                   "AddressFamily": 2, "PrefixLength": 8}))])
    assert {(a.address, a.compartment_id) for a in info.addresses} >= {("172.23.181.37", 2), ("10.1.2.3", None)}


def test_utf16_files_as_powershell_redirection_writes_them(tmp_path):
    info = load_host_info([write(tmp_path, "netip.txt", "\ufeff" + SEED_NETIP.replace("\n", "\r\n"), "utf-16-le")])
    assert info.addresses[0].address == "172.23.181.37"


@pytest.mark.parametrize(("text", "line", "words"), [
    ("\nWindows-IP-Konfiguration\n\n   Hostname  . . . . . . . . . . . . : HOST\n", 2, "localized"),
    ("Netzwerkinformationen\n", 1, "localized"),
    (SEED_IPCONFIG.replace("IPv4 Address. . .", "IPv4-Adresse  . . "), 11, "localized"),
    (SEED_IPCONFIG.replace("Subnet Mask . . . . .", "Masque de sous-r\u00e9seau"), 12, "localized"),
    ("\nCarte Ethernet Ethernet :\n\n   Adresse IPv4. . . . . . . . . . . . . .: 10.0.0.2\n", 2, "localized"),
])
def test_localized_output_is_refused_with_the_line(tmp_path, text, line, words):
    message = error_of(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'host.txt'}:{line}: ") and words in message


@pytest.mark.parametrize(("text", "line", "words"), [
    (SEED_IPCONFIG + SEED_NETIP, 14, "not ipconfig output"),               # mixed without a command line
    (SEED_NETIP + "\n" + SEED_IPCONFIG.split("\n", 2)[2], 15, "not Get-NetIPAddress output"),
    (SEED_IPCONFIG.replace("172.23.181.37", "172.23.181.377"), 11, "not an IP address"),
    (SEED_IPCONFIG.replace("255.255.240.0", "255.0.255.0"), 12, "not a subnet mask"),
    (SEED_IPCONFIG.replace("IPv4 Address. . . . . . . . . . . : 172.23.181.37\n", ""), 11, "without an IPv4 Address"),
    (SEED_IPCONFIG.replace("Default Gateway", "\x01\x02garbage"), 13, "garbled"),
    (SEED_NETIP.replace("IPAddress         : 172.23.181.37\n", ""), 1, "without IPAddress"),
    (SEED_NETIP.replace("PrefixLength      : 20", "PrefixLength      : twenty"), 6, "not a number"),
    (SEED_NETIP.replace("AddressFamily     : IPv4", "AddressFamily     : IPv6"), 4, "does not match"),
    (SEED_NETIP.replace("PolicyStore", "InterfaceIndex"), 13, "appears twice"),
    ("IPv4 Address. . . . . . . . . . . : 10.0.0.1\n", 1, "outside an adapter block"),
    ("just some notes\n", 1, "neither ipconfig, Get-NetIPAddress nor Get-NetRoute"),
    ('[\n  {"IPAddress": "10.0.0.1"},\n  {"IPAddress": 10.0.0.2}\n]', 3, "not valid JSON"),
    ('[\n  {"IPAddress": "10.0.0.1"},\n  5\n]', 3, "expected Get-NetIPAddress or Get-NetRoute objects"),
    (NETROUTE.replace("172.30.24.0/21", "172.30.24.0/33"), 5, "not a route"),
    (NETROUTE.replace("23      172.30.24.0/21", "x23     172.30.24.0/21"), 5, "interface index"),
    (NETROUTE.replace("172.30.16.1 ", "fe80::1     "), 5, "not of the family"),
    (NETROUTE + "23      10.0.0.0/8\n", 8, "not a Get-NetRoute row"),
    ("Get-NetRoute\n" + NETROUTE.split("\n")[4] + "\n", 2, "before its header"),
])
def test_garbled_and_mixed_files_name_the_line(tmp_path, text, line, words):
    message = error_of(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'host.txt'}:{line}: "), message
    assert words in message


def test_missing_empty_and_binary_files(tmp_path):
    with pytest.raises(BadInputError, match="no such file"):
        load_host_info([tmp_path / "missing.txt"])
    with pytest.raises(BadInputError, match="is empty"):
        load_host_info([write(tmp_path, "empty.txt", " \n")])
    (tmp_path / "bin.txt").write_bytes(b"\x89PNG\x00\x01\x02abc")
    with pytest.raises(BadInputError, match="binary"):
        load_host_info([tmp_path / "bin.txt"])


def test_get_netroute_table_takes_the_compartments_of_ipconfig(tmp_path):
    info = load_host_info([write(tmp_path, "host.txt", ALL_COMPARTMENTS + "\n" + NETROUTE)])
    routes = [(r.if_index, r.destination, r.next_hop, r.metric, r.compartment_id) for r in info.routes]
    # ifIndex 23 is the container NIC of compartment 3, 9 the host's vEthernet (nat) in compartment 1 (ipconfig)
    assert routes == [(23, "172.30.24.0/21", "172.30.16.1", 256, 3), (23, "172.30.16.0/20", "0.0.0.0", 256, 3),
                      (9, "0.0.0.0/0", "172.30.16.254", 0, 1)]
    assert info.routes[0].source == f"{tmp_path / 'host.txt'}:{ALL_COMPARTMENTS.count(chr(10)) + 2 + 4}"


def test_convertto_json_of_get_netroute(tmp_path):
    doc = [{"DestinationPrefix": "172.30.24.0/21", "NextHop": "172.30.16.1", "InterfaceIndex": 23, "RouteMetric": 256,
            "InterfaceAlias": "vEthernet (Container NIC 5a1e0f92)", "AddressFamily": 2, "CompartmentId": 3,
            "CimClass": "ROOT/StandardCimv2:MSFT_NetRoute"},
           {"DestinationPrefix": "fd00::/64", "NextHop": "::", "ifIndex": 23}]
    info = load_host_info([write(tmp_path, "routes.json", json.dumps(doc, indent=2))])
    assert [(r.destination, r.next_hop, r.if_index, r.compartment_id) for r in info.routes] == \
        [("172.30.24.0/21", "172.30.16.1", 23, 3), ("fd00::/64", "::", 23, None)]
    assert info.addresses == []
