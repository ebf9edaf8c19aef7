"""Host Network Service (HNS) and its plugins: which providers record it, and what wnvdiag reads.

No public manifest or parser gives their event ids or fields, so wnvdiag has no hand-written
layouts for them. Events that carry their own schema (TraceLogging, or EventMetadata the trace
embeds) are decoded by the generic layers; the rest are counted and reported "present but not
decoded". ``wnvdiag`` turns decoded HNS events into facts only by name (``failed``/``error`` in
the event name or a non-zero ``Status``/``HResult`` field): see diag/facts/providers.py.
"""

from __future__ import annotations

NAME = "HNS"
PROVIDERS = {
    "0c885e0d-6eb6-476c-a048-2457eed3a5c1": "Microsoft-Windows-Host-Network-Service",
    "564368d6-577b-4af5-ad84-1c54464848e6": "Microsoft-Windows-Overlay-HNSPlugin",
    "d0e4bc17-34c7-43fc-9a72-d89a59d6979a": "Microsoft.Windows.HostNetworkingService.PrivateCloudPlugin",
    "0bacf1d2-fb51-549a-6119-04daa7180dc8": "Microsoft-Windows-Guest-Network-Service",
    "80ce50de-d264-4581-950d-abadeee0d340": "Microsoft.Windows.HyperV.Compute",
}
