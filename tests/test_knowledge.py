"""pktmon lookup tables: both drop-reason numberings, enumerations, and load errors."""

from __future__ import annotations

import pytest
import yaml

from diag import knowledge
from diag.knowledge import (
    KnowledgeError,
    component_type_name,
    direction_name,
    drop_reason_label,
    drop_reason_name,
    drop_reason_range,
    load_pktmon_knowledge,
    packet_type_name,
    property_type_name,
)
from diag.resources import data_dir

SHIPPED = data_dir("knowledge") / knowledge.PKTMON_FILE


@pytest.mark.parametrize(
    ("code", "build", "name"),
    [
        # numbering of builds after 17763
        (16, 19041, "Spoofed MAC address is not allowed"),
        (201, 19041, "Adapter paused"),
        (202, 22621, "Adapter reset in progress"),
        (226, 19041, "Unallowed EtherType"),
        (204, 26200, "Unsupported EtherType"),
        (402, 19041, "VF not ready"),
        (907, 20348, "No route available"),
        (1204, None, "Transport endpoint not found"),
        # 17763: other values for the adapter and NetVsc reasons
        (101, 17763, "Adapter paused"),
        (102, 17763, "Adapter reset in progress"),
        (103, 17763, "Send aborted"),
        (104, 17763, "Unsupported EtherType"),
        (201, 17763, "Microport error"),
        (202, 17763, "VF not ready"),
        (203, 17763, "Microport not ready"),
        (204, 17763, "VMBus error"),
        (29, 17763, "Windows Network Virtualization error"),
        # the vSwitch range means the same in both
        (16, 17763, "Spoofed MAC address is not allowed"),
        (23, 17763, "MTU mismatch"),
    ],
)
def test_drop_reason_names(code, build, name):
    assert drop_reason_name(code, build) == name


@pytest.mark.parametrize(
    ("code", "build"),
    [
        (29, 19041),  # Windows Network Virtualization error exists only in 17763
        (101, 19041),  # 101-104 are 17763-only values
        (104, None),
        (401, 17763),  # NetVsc moved to 401-404 after 17763
        (907, 17763),  # other ranges were numbered differently in 17763: not guessed
        (224, 19041),  # a hole in the adapter range
        (99999, 19041),
    ],
)
def test_unknown_codes_are_none(code, build):
    assert drop_reason_name(code, build) is None
    assert drop_reason_label(code, build) == f"unknown (code {code})"


def test_ranges_give_a_cause():
    assert "virtual switch" in drop_reason_range(16).layer.lower()
    assert "NetVsc" in drop_reason_range(402).layer
    assert "NetVsc" in drop_reason_range(202, 17763).layer
    assert "VFP" in drop_reason_range(709).layer
    # a code without a name still gets its range's cause
    assert drop_reason_name(3005) is None and "http" in drop_reason_range(3005).layer.lower()
    assert drop_reason_range(500) is None
    for r in load_pktmon_knowledge().drop_reasons.current.ranges:
        assert len(r.cause) > 40


def test_enumerations():
    assert component_type_name(1) == "NDIS"
    assert component_type_name(9) == "NetVsc Miniport"
    assert component_type_name(5) == "VmsVmNic"
    assert component_type_name(42) is None
    assert direction_name(0) == "None"
    assert direction_name(1) == "In" and direction_name(2) == "Out"
    assert direction_name(5) == "Ingress" and direction_name(6) == "Egress"
    assert property_type_name(10) == "VMSwitchName"
    assert packet_type_name(1) == "Ethernet"


def test_loading_is_cached():
    assert load_pktmon_knowledge() is load_pktmon_knowledge()


def _shipped() -> dict:
    return yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))


def test_a_bad_value_names_file_and_key(tmp_path):
    data = _shipped()
    data["drop_reasons"]["current"]["codes"][16] = {"symbol": "Drop_MacSpoofing"}  # no name
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(KnowledgeError) as exc:
        load_pktmon_knowledge(path)
    message = str(exc.value)
    assert str(path) in message
    assert "drop_reasons.current.codes.16.name" in message


def test_a_code_outside_every_range_is_rejected(tmp_path):
    data = _shipped()
    data["drop_reasons"]["current"]["codes"][555] = {"symbol": "Drop_X", "name": "X"}
    path = tmp_path / "outside.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(KnowledgeError, match="code 555 lies outside every range"):
        load_pktmon_knowledge(path)


def test_malformed_yaml_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("drop_reasons: [\n", encoding="utf-8")
    with pytest.raises(KnowledgeError, match="not valid YAML") as exc:
        load_pktmon_knowledge(path)
    assert str(path) in str(exc.value)
