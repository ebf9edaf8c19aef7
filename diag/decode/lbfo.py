"""LBFO (NIC teaming): which providers record it and what wnvdiag can read of them.

- Microsoft-Windows-MsLbfoEventProvider {B72C6994-9FE0-45AD-83B3-8F5885F20E0E} (events 1-32) and
  Microsoft-Windows-MsLbfoSysEvtProvider {387ED463-8B1B-42C9-9EF0-803FDFD5D94E} (System log, 16945-16950):
  part of the netsh ``scenario=Virtualization`` provider set. No public manifest or parser gives their
  fields, so their events are counted and reported "present but not decoded" unless the trace carries
  their schema (TraceLogging or embedded EventMetadata), which the generic layers then use. Their
  message texts are public (libyal's MsLbfoProvider.sys message table): the fact builder names the
  events from knowledge/event-catalogue.yaml, and counts the troubled ones (send failures, NBL drops,
  MAC conflicts, LACP churn, member disconnects) though it cannot read their fields.
- Microsoft-Windows-NdisImPlatformEventProvider {11C5D8AD-756A-42C2-8087-EB1B4A72A846}: the NDIS
  IM platform driver LBFO teams are built on; etl-parser's catalogue has layouts for it (member
  PnP events, adapter power state, ...), so the catalogue layer decodes them.

Switch Embedded Teaming (SET) is reported by Hyper-V-VmSwitch (team member events 116-118, 152-189).
"""

from __future__ import annotations

NAME = "LBFO"
PROVIDERS = {
    "b72c6994-9fe0-45ad-83b3-8f5885f20e0e": "Microsoft-Windows-MsLbfoEventProvider",
    "387ed463-8b1b-42c9-9ef0-803fdfd5d94e": "Microsoft-Windows-MsLbfoSysEvtProvider",
    "11c5d8ad-756a-42c2-8087-eb1b4a72a846": "Microsoft-Windows-NdisImPlatformEventProvider",
}
