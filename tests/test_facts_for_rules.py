"""Facts added for the rules pack (issue 6): subnet overlaps between compartments, VF/NetVsc pairs,
the trace-quality fields of the trace fact, Offload.enabled and PacketPath.path.

Expected values are written from the inputs built here (addresses, prefixes, MACs), not from output.
"""

from __future__ import annotations

import pytest

from diag.facts.network import Address, Component, IpRoute, NatInstance, Offload
from diag.facts.overlap import overlap_facts
from diag.facts.pktmon import PktmonDigest
from diag.facts.sriov import vf_pair_facts


def address(addr, subnet, compartment, if_index, sources=("TCPIP",)):
    return Address(address=addr, family="IPv4", subnet=subnet, compartment_id=compartment, if_index=if_index,
                   sources=list(sources))


def vmnic(cid, compartment=None, switch=None, vsid=None, addresses=()):
    return Component(component_id=cid, name="vmswitch.sys", component_type="VmsVmNic", compartment_id=compartment,
                     vmswitch_name=switch, vsid=vsid, addresses=list(addresses))


def test_overlap_that_meets_via_nat_and_a_shared_switch():
    facts = [address("172.20.5.11", "172.20.0.0/16", 2, 20), address("172.20.17.11", "172.20.16.0/20", 3, 21),
             vmnic(10, 2, "nat"), vmnic(11, 3, "nat"),
             NatInstance(instance_name="ContainerNAT", prefix="172.20.0.0/16", compartment_id=1)]
    (o,) = overlap_facts(facts)
    assert (o.compartment_a, o.prefix_a, o.compartment_b, o.prefix_b) == (2, "172.20.0.0/16", 3, "172.20.16.0/20")
    assert o.overlap == "172.20.16.0/20" and o.meet_via == "nat,shared-vswitch" and o.meets
    assert not o.isolated and not o.same_network and o.source == "trace"
    assert (o.interfaces_a, o.interfaces_b, o.vswitches, o.nat_instances) == ("20", "21", "nat", "ContainerNAT")


def route(destination, if_index, compartment, next_hop=None):
    return IpRoute(destination=destination, if_index=if_index, compartment_id=compartment, next_hop=next_hop,
                   on_link=next_hop is None)


@pytest.mark.parametrize(("routes", "joined"), [
    ([route("10.0.0.128/25", 20, 2, "10.0.0.1")], True),   # more specific than 10.0.0.0/24: wins for .128-.255
    ([route("10.0.0.0/24", 21, 3, "10.0.0.254")], True),   # as specific, in the other compartment
    ([route("10.0.0.0/16", 20, 2, "10.0.0.1")], False),    # less specific: the on-link /24 keeps the overlap
    ([route("0.0.0.0/0", 20, 2, "10.0.0.1")], False),      # the default route
    ([route("10.0.0.0/24", 20, 2)], False),                # on-link
    ([route("10.0.1.0/24", 20, 2, "10.0.0.1")], False),    # outside the overlap
])
def test_a_gateway_route_into_the_overlap_joins_the_compartments(routes, joined):
    facts = [address("10.0.0.11", "10.0.0.0/24", 2, 20), address("10.0.0.140", "10.0.0.0/24", 3, 21),
             vmnic(10, 2, "l2bridge-a"), vmnic(11, 3, "l2bridge-b"), *routes]
    (o,) = overlap_facts(facts)
    assert (o.meets, o.meet_via == "route", o.same_network) == (joined, joined, False)
    if joined:
        (r,) = routes
        assert o.routes == f"{r.compartment_id}: {r.destination} via {r.next_hop} (if {r.if_index})"


def test_isolated_tenants_and_one_shared_network_are_told_apart():
    tenants = [address("10.0.0.4", "10.0.0.0/24", 5, 30), address("10.0.0.4", "10.0.0.0/24", 6, 31),
               vmnic(20, 5, "sdn-a", vsid=5001), vmnic(21, 6, "sdn-b", vsid=6001)]
    (o,) = overlap_facts(tenants)
    assert o.isolated and not o.meets and o.meet_via == "" and not o.same_network
    one_nat = [address("172.20.0.2", "172.20.0.0/20", 2, 20), address("172.20.0.3", "172.20.0.0/20", 3, 21),
               vmnic(10, 2, "nat"), vmnic(11, 3, "nat")]
    (o,) = overlap_facts(one_nat)
    assert o.same_network and o.meets and not o.isolated


def test_one_switch_carrying_two_tenants_does_not_join_them_when_their_vsids_differ():
    # HNV/SDN: every tenant's vmNICs sit on the host's one vSwitch; the VSID keeps them apart
    tenants = [address("10.0.0.4", "10.0.0.0/24", 5, 30), address("10.0.0.4", "10.0.0.0/24", 6, 31),
               vmnic(20, 5, "SDNSwitch", vsid=5001), vmnic(21, 6, "SDNSwitch", vsid=6001)]
    (o,) = overlap_facts(tenants)
    assert o.isolated and not o.meets and o.meet_via == "" and o.vswitches == "SDNSwitch"
    assert (o.vsids_a, o.vsids_b) == ("5001", "6001")
    one_vsid = tenants[:2] + [vmnic(20, 5, "SDNSwitch", vsid=5001), vmnic(21, 6, "SDNSwitch", vsid=5001)]
    (o,) = overlap_facts(one_vsid)
    assert o.meet_via == "shared-vswitch" and o.same_network and not o.isolated


def test_host_info_only_overlaps_find_their_switch_through_the_vmnic_addresses():
    facts = [address("172.20.5.11", "172.20.0.0/16", 2, 20, ["host-info"]),
             address("172.20.17.11", "172.20.16.0/20", 3, 21, ["host-info"]),
             vmnic(10, switch="nat", addresses=["172.20.5.11"]), vmnic(11, switch="nat", addresses=["172.20.17.11"])]
    (o,) = overlap_facts(facts)
    assert o.source == "host-info" and o.meet_via == "shared-vswitch"
    assert overlap_facts([address("10.1.0.4", "10.1.0.0/24", 1, 12), address("10.2.0.4", "10.2.0.0/24", 2, 13)]) == []


def test_a_vf_and_its_netvsc_adapter_pair_on_the_mac():
    vf = Component(component_id=48, name="mlx5.sys", description="Mellanox ConnectX-4 Lx Virtual Ethernet Adapter #2",
                   component_type="Miniport", mac="00-22-48-7B-B3-80", packets=19)
    synthetic = Component(component_id=58, name="NetVsc.sys", description="Microsoft Hyper-V Network Adapter #3",
                          component_type="NetVsc Miniport", mac="00-22-48-7b-b3-80")
    other = Component(component_id=38, name="NetVsc.sys", description="Microsoft Hyper-V Network Adapter #2",
                      component_type="NetVsc Miniport", mac="00-22-48-7B-B0-99")
    physical = Component(component_id=1, name="mlx5.sys", description="Mellanox ConnectX-5 Adapter",
                         component_type="Miniport", mac="00-22-48-7B-B0-99")
    (pair,) = vf_pair_facts([vf, synthetic, other, physical])
    assert (pair.vf_component_id, pair.netvsc_component_id, pair.vf_packets) == (48, 58, 19)


def test_offload_enabled_follows_a_boolean_value_only():
    assert Offload(where="s", offload="vxlan encapsulation", value=True, source="x").enabled is True
    assert Offload(where="s", offload="nvgre encapsulation", value=False, source="x").enabled is False
    assert Offload(where="p", offload="iov_weight", value=100, source="x").enabled is None


def test_the_digest_counts_truncated_snapshots_and_the_size_limit():
    import struct

    digest = PktmonDigest(track=False)
    header = struct.Struct("<QHHHHHHHIIHH")  # PktGroupId .. LoggedPayloadSize: the pktmon packet header
    for original, logged in ((1514, 128), (60, 60), (900, 128)):
        payload = header.pack(1, 1, 1, 1, 1, 1, 1, 0, 0, 0, original, logged) + bytes(logged)
        assert digest.packet(memoryview(payload), False)
    assert digest.payload_truncated == 2 and digest.logged_size_max == 128
