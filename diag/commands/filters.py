"""The packet filter options shared by ``check``, ``inspect`` and ``export-pcap`` (``diag.select``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import typer

if TYPE_CHECKING:
    from diag.select import PacketFilter

SINCE_OPTION = typer.Option(None, "--since", metavar="TIME",
                            help="Only packets at or after TIME: 2024-05-14T10:00:02Z (UTC without a zone), a time "
                                 "of day such as 10:00:02, or an offset from the trace's start such as +90s.")
UNTIL_OPTION = typer.Option(None, "--until", metavar="TIME", help="Only packets at or before TIME (as --since).")
ADDRESS_OPTION = typer.Option([], "--address", metavar="ADDR",
                              help="Only packets to or from this IP address, subnet (10.0.0.0/24) or MAC; repeat "
                                   "for any of several.")
VLAN_OPTION = typer.Option([], "--vlan", metavar="N", help="Only packets tagged with this VLAN id (repeatable).")
COMPONENT_OPTION = typer.Option([], "--component", metavar="ID",
                                help="Only packets seen at this pktmon component id (repeatable).")


def packet_filter(since: Optional[str], until: Optional[str], components: list[int] = (),
                  addresses: list[str] = (), vlans: list[int] = ()) -> PacketFilter | None:
    """The filter the options ask for, None when they ask for none. Bad values raise ``BadInputError``."""
    from diag.select import PacketFilter

    selected = PacketFilter.from_options(since, until, components, addresses, vlans)
    return selected if selected.active else None
