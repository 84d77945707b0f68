"""Alert rules: the registry (`RULES`), the rule contract, the negative-spike detector,
the high-reach rule and their settings."""

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
    Evaluation,
    HighReachMention,
    HighReachRule,
    NegativeSpikeRule,
    Planned,
)
from alerts.visibility import Visibility, smallest_visible_wave
from brandpulse.alert_settings import HighReachSettings, SpikeSettings

__all__ = [
    "RULES",
    "AlertRule",
    "Check",
    "Evaluation",
    "HighReachMention",
    "HighReachRule",
    "HighReachSettings",
    "NegativeSpikeRule",
    "Planned",
    "Point",
    "SpikeContinuing",
    "SpikeDetector",
    "SpikeEnded",
    "SpikeEvent",
    "SpikeSettings",
    "SpikeStarted",
    "Visibility",
    "smallest_visible_wave",
]
