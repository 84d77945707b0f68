"""Alert rules: the negative-spike detector, the high-reach rule and their settings."""

from alerts.detector import (
    Point,
    SpikeContinuing,
    SpikeDetector,
    SpikeEnded,
    SpikeEvent,
    SpikeStarted,
)
from alerts.rules import RULES, HighReachMention, HighReachRule, Rule
from alerts.visibility import Visibility, smallest_visible_wave
from brandpulse.alert_settings import HighReachSettings, SpikeSettings

__all__ = [
    "RULES",
    "HighReachMention",
    "HighReachRule",
    "HighReachSettings",
    "Point",
    "Rule",
    "SpikeContinuing",
    "SpikeDetector",
    "SpikeEnded",
    "SpikeEvent",
    "SpikeSettings",
    "SpikeStarted",
    "Visibility",
    "smallest_visible_wave",
]
