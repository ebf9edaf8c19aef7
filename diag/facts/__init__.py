"""facts: the small, frozen pydantic models the decoders produce and the rules match on."""

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

__all__ = [
    "FACT_MODELS",
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
