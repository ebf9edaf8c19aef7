"""ARP requests and IPv6 Neighbor Solicitations in the frames pktmon logged, and whether they were answered.

``NeighborTracker`` is called by the pktmon digest for the first snapshot of every ARP packet and
every ICMPv6 packet. It reads Ethernet (one 802.1Q tag), then ARP for IPv4 or IPv6 (no extension
headers) + ICMPv6 at fixed offsets:
- a request (ARP operation 1, ICMPv6 135) is counted per (requester MAC, target address), with the
  component of its first snapshot and the times of its first and last request; a request less than
  ``same_within`` ticks from the last one counted for that key is the same solicitation seen again (counted in
  ``repeats``, not as a request): the host retries ARP and ND a second or so apart (RFC 4861 RetransTimer);
- an answer (ARP operation 2 from the target's address, ICMPv6 136 for the target) counts for the
  target, whoever it went to.
Requests that expect no answer are counted apart (``announcements``): gratuitous ARP (sender address
= target), ARP probes (sender 0.0.0.0) and DAD solicitations (source ::) (RFC 5227, RFC 4862).
Requesters and targets beyond the table sizes are counted (``not_kept``), never silently dropped.
"""

from __future__ import annotations

import ipaddress
from typing import Callable

from diag.decode.frames import ETHERTYPE_ARP, ETHERTYPE_IPV6, ETHERTYPE_VLAN
from diag.decode.wire import mac_text
from diag.facts.evidence import when
from diag.facts.network import NeighborRequests

ARP_REQUEST, ARP_REPLY = 1, 2
ND_SOLICITATION, ND_ADVERTISEMENT = 135, 136
MAX_REQUESTS = 1024
MAX_TARGETS = 2048
MAX_FACTS = 64
_UNSPECIFIED_V4, _UNSPECIFIED_V6 = bytes(4), bytes(16)
# one request key's record
REQUESTS, FIRST, LAST, COMPONENT, COUNTED = range(5)  # COUNTED: when the last request counted was seen


class NeighborTracker:
    """Address-resolution requests per (requester MAC, target) and answers per target, bounded."""

    def __init__(self, *, max_requests: int = MAX_REQUESTS, max_targets: int = MAX_TARGETS,
                 same_within: int | None = None) -> None:
        self.max_requests = max_requests
        self.same_within = same_within  # raw ticks: a request this close to the last one is that one, seen again
        self.max_targets = max_targets
        self.requests: dict[tuple[bytes, bytes], list] = {}  # (requester MAC, target address) -> record
        self.answers: dict[bytes, int] = {}  # target address -> answers
        self.announcements = 0
        self.repeats = 0
        self.not_parsed = 0
        self.requests_not_kept = 0
        self.answers_not_kept = 0

    @property
    def not_kept(self) -> int:
        return self.requests_not_kept + self.answers_not_kept

    def arp(self, data: bytes, comp: int, ticks: int | None) -> None:
        """An Ethernet frame whose flow key says ARP."""
        pos = _network_start(data, ETHERTYPE_ARP)
        if pos is None or len(data) < pos + 28 or data[pos + 4] != 6 or data[pos + 5] != 4:
            self.not_parsed += 1
            return
        operation = (data[pos + 6] << 8) | data[pos + 7]
        sender, target = data[pos + 14:pos + 18], data[pos + 24:pos + 28]
        if operation == ARP_REQUEST:
            if sender == target or sender == _UNSPECIFIED_V4:
                self.announcements += 1
            else:
                self._request(data[6:12], target, comp, ticks)
        elif operation == ARP_REPLY:
            self._answer(sender)

    def icmpv6(self, data: bytes, comp: int, ticks: int | None) -> None:
        """An Ethernet frame whose flow key says ICMPv6: only Neighbor Solicitations and Advertisements count."""
        pos = _network_start(data, ETHERTYPE_IPV6)
        if pos is None or len(data) < pos + 41 or data[pos + 6] != 58:
            return  # ICMPv6 behind extension headers (MLD) or cut short: not neighbour discovery
        kind = data[pos + 40]
        if kind != ND_SOLICITATION and kind != ND_ADVERTISEMENT:
            return
        if len(data) < pos + 64:
            self.not_parsed += 1
            return
        target = data[pos + 48:pos + 64]
        if kind == ND_ADVERTISEMENT:
            self._answer(target)
        elif data[pos + 8:pos + 24] == _UNSPECIFIED_V6:
            self.announcements += 1
        else:
            self._request(data[6:12], target, comp, ticks)

    def _request(self, requester: bytes, target: bytes, comp: int, ticks: int | None) -> None:
        key = (requester, target)
        record = self.requests.get(key)
        if record is None:
            if len(self.requests) >= self.max_requests:
                self.requests_not_kept += 1
                return
            record = self.requests[key] = [0, ticks, ticks, comp, None]
        elif (self.same_within is not None and ticks is not None and record[COUNTED] is not None
              and abs(ticks - record[COUNTED]) < self.same_within):
            self.repeats += 1  # one solicitation logged again (another processor, a path broken by a rewrite)
            return
        record[REQUESTS] += 1
        record[COUNTED] = ticks
        if ticks is not None:
            if record[FIRST] is None or ticks < record[FIRST]:
                record[FIRST] = ticks
            if record[LAST] is None or ticks > record[LAST]:
                record[LAST] = ticks

    def _answer(self, target: bytes) -> None:
        answers = self.answers
        if target in answers:
            answers[target] += 1
        elif len(answers) < self.max_targets:
            answers[target] = 1
        else:
            self.answers_not_kept += 1


def _network_start(data: bytes, ether_type: int) -> int | None:
    """Where the network header starts in an Ethernet frame of ``ether_type`` (one 802.1Q tag allowed)."""
    if len(data) < 14:
        return None
    found = (data[12] << 8) | data[13]
    if found == ether_type:
        return 14
    if found == ETHERTYPE_VLAN and len(data) >= 18 and ((data[16] << 8) | data[17]) == ether_type:
        return 18
    return None


def address_text(raw: bytes) -> str:
    return str(ipaddress.ip_address(raw))


def neighbor_request_facts(tracker: NeighborTracker, vmnics: dict[str, tuple[int, str]],
                           label: Callable[[int], str], filetime: Callable[[int | None], int | None],
                           limit: int = MAX_FACTS) -> list[NeighborRequests]:
    """One fact per (requester, target): unanswered ones first, then the most requested, at most ``limit``."""
    complete = tracker.answers_not_kept == 0
    ranked = sorted(tracker.requests.items(),
                    key=lambda item: (tracker.answers.get(item[0][1], 0) > 0, -item[1][REQUESTS]))
    facts = []
    for (requester, target), record in ranked[:limit]:
        mac = mac_text(requester)
        vmnic = vmnics.get(mac)
        comp_id, name = vmnic if vmnic is not None else (record[COMPONENT], label(record[COMPONENT]))
        first, last = when(filetime(record[FIRST])), when(filetime(record[LAST]))
        facts.append(NeighborRequests(
            protocol="ARP" if len(target) == 4 else "ND", target=address_text(target), requester_mac=mac,
            component_id=comp_id, component_name=name, vmnic=vmnic is not None, requests=record[REQUESTS],
            answers=tracker.answers.get(target, 0), answers_complete=complete, first_request=first,
            last_request=last, span_seconds=round((last - first).total_seconds(), 3) if first and last else None))
    return facts


def facts_not_kept(tracker: NeighborTracker, limit: int = MAX_FACTS) -> int:
    """Request records beyond the facts limit."""
    return max(0, len(tracker.requests) - limit)
