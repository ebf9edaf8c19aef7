"""Virtual Filtering Platform (VFP, vfpext.sys): which provider records it and what wnvdiag reads.

Microsoft-Windows-Hyper-V-VfpExt {9F2660EA-CFE7-428F-9850-AECA612619B0}. No public manifest, parser
or message table gives its event ids or fields; events are decoded only when the trace carries
their schema, otherwise counted and reported "present but not decoded". VFP drops are visible in
pktmon as drop reasons 701-719 (knowledge/pktmon-drop-reasons.yaml), which wnvdiag decodes.
"""

from __future__ import annotations

NAME = "VFP"
PROVIDERS = {"9f2660ea-cfe7-428f-9850-aeca612619b0": "Microsoft-Windows-Hyper-V-VfpExt"}
