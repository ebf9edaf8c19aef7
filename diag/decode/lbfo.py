"""LBFO (NIC teaming): which providers record it and what wnvdiag can read of them.

- Microsoft-Windows-MsLbfoEventProvider {B72C6994-9FE0-45AD-83B3-8F5885F20E0E}: part of the netsh
  ``scenario=Virtualization`` provider set. No public manifest, parser or message table was found,
  so its events are counted and reported "present but not decoded" unless the trace carries
  their schema (TraceLogging or embedded EventMetadata), which the generic layers then use.
- Microsoft-Windows-NdisImPlatformEventProvider {11C5D8AD-756A-42C2-8087-EB1B4A72A846}: the NDIS
  IM platform driver LBFO teams are built on; etl-parser's catalogue has layouts for it (member
  PnP events, adapter power state, ...), so the catalogue layer decodes them.

Switch Embedded Teaming (SET) is reported by Hyper-V-VmSwitch (team member events 116-118, 152-189).
"""

from __future__ import annotations

NAME = "LBFO"
PROVIDERS = {
    "b72c6994-9fe0-45ad-83b3-8f5885f20e0e": "Microsoft-Windows-MsLbfoEventProvider",
    "11c5d8ad-756a-42c2-8087-eb1b4a72a846": "Microsoft-Windows-NdisImPlatformEventProvider",
}
