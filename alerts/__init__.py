"""Alert rules: the registry (`RULES`), the rule contract, the negative-spike detector,
the high-reach rule, the further rules of `alerts.rules` and their settings."""

from alerts.detector import (
    Point,
    SpikeContinuing,
    SpikeDetector,
    SpikeEnded,
    SpikeEvent,
    SpikeStarted,
)
from alerts.rules import (
    RULES,
    AlertRule,
    Check,
    CompetitorNegativeSpikeRule,
    Evaluation,
    FlatlineRule,
    HighReachMention,
    HighReachRule,
    NegativeSpikeRule,
    Planned,
    PositiveSpikeRule,
    SovShiftRule,
    SpikeRule,
    VolumeSpikeRule,
)
from alerts.visibility import Visibility, smallest_visible_wave
from brandpulse.alert_settings import HighReachSettings, SpikeSettings

__all__ = [
    "RULES",
    "AlertRule",
    "Check",
    "CompetitorNegativeSpikeRule",
    "Evaluation",
    "FlatlineRule",
    "HighReachMention",
    "HighReachRule",
    "HighReachSettings",
    "NegativeSpikeRule",
    "Planned",
    "Point",
    "PositiveSpikeRule",
    "SovShiftRule",
    "SpikeContinuing",
    "SpikeDetector",
    "SpikeEnded",
    "SpikeEvent",
    "SpikeRule",
    "SpikeSettings",
    "SpikeStarted",
    "Visibility",
    "VolumeSpikeRule",
    "smallest_visible_wave",
]
