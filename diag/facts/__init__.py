"""facts: the small, frozen pydantic models the decoders produce and the rules match on.

``models`` holds the core facts (pktmon drop groups, trace quality, findings); ``network`` the
host's network model (issue 4). Importing this package registers the network models in
``FACT_MODELS``, so the rules engine and the rule validator know their fields: any import of
``diag.facts.models`` runs this first.
"""

from diag.facts.models import (
    FACT_MODELS,
    Confidence,
    Fact,
    Finding,
    PacketDropGroup,
    RuleError,
    Severity,
    TraceQuality,
    fact_model,
    scalar_fields,
    severity_rank,
)
from diag.facts.network import NETWORK_FACT_MODELS

FACT_MODELS.update({kind: model for kind, model in NETWORK_FACT_MODELS.items() if kind not in FACT_MODELS})

__all__ = [
    "FACT_MODELS",
    "NETWORK_FACT_MODELS",
    "Confidence",
    "Fact",
    "Finding",
    "PacketDropGroup",
    "RuleError",
    "Severity",
    "TraceQuality",
    "fact_model",
    "scalar_fields",
    "severity_rank",
]
