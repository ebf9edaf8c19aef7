"""What the host-information files say: interfaces and addresses, each with the file:line it came from."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HostAddress(_Model):
    address: str
    family: str
    prefix_length: int | None = None
    if_index: int | None = None
    interface_alias: str | None = None
    compartment_id: int | None = None
    state: str | None = None
    origin: str | None = None
    source: str  # file:line


class HostInterface(_Model):
    alias: str
    adapter_type: str | None = None
    if_index: int | None = None
    compartment_id: int | None = None
    description: str | None = None
    mac: str | None = None
    dhcp_enabled: bool | None = None
    dns_suffix: str | None = None
    media_disconnected: bool = False
    gateways: list[str] = []
    dns_servers: list[str] = []
    source: str  # file:line


class HostRoute(_Model):
    destination: str
    next_hop: str  # 0.0.0.0 / :: for an on-link route
    if_index: int
    interface_alias: str | None = None
    compartment_id: int | None = None
    metric: int | None = None
    source: str  # file:line


class HostInfo(_Model):
    """Everything read from the files, after linking: an address takes its interface's compartment
    and index when the file that listed it did not say (Get-NetIPAddress has no compartment)."""

    files: list[str] = []
    interfaces: list[HostInterface] = []
    addresses: list[HostAddress] = []
    routes: list[HostRoute] = []
    compartments: list[int] = []
    warnings: list[str] = []
