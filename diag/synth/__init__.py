"""Synthetic ETL traces whose diagnosis is known: an ETL writer, event encoders, a scenario library.

* ``etlwriter``: the on-disk format (header buffer, per-CPU buffers, EVENT_HEADER64 and classic
  records, QPC clock, events/buffers lost), plain or LZXpress-compressed as the relogger writes it;
* ``compress``: the LZXpress (MS-XCA Plain LZ77) compressor;
* ``frames``: Ethernet/802.1Q/ARP/IPv4/IPv6/TCP/UDP/ICMP frames and VXLAN/NVGRE encapsulation;
* one encoder module per provider: ``pktmon``, ``ndiscap``, ``vmswitch``, ``netvsc``, ``tcpip``,
  ``winnat``, ``wnv``; ``eventmetadata`` builds the schemas a relogged trace embeds;
* ``trace`` / ``capture`` / ``bulk``: a scenario's events in time, a pktmon capture with its
  rundown, and the template buffers that make ``--size`` runs cheap;
* ``scenarios``: the library (one module per scenario) and ``generate.synthesize``, what
  ``wnvdiag synth`` runs.

Real traces from the web are never copied into the project: everything here is built from layouts.
"""

from diag.synth.etlwriter import BufferFlag, BufferInfo, EtlWriter, filetime_from_unix
from diag.synth.generate import SynthResult, parse_size, scenario_names, synthesize

__all__ = ["BufferFlag", "BufferInfo", "EtlWriter", "SynthResult", "filetime_from_unix", "parse_size",
           "scenario_names", "synthesize"]
