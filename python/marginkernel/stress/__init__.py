"""Stress testing: user stress scenarios, historical replays and reverse stress (full revaluation)."""

from __future__ import annotations

from .historical import load_closes, moves, replay, worst_moves
from .reverse import reverse_stress
from .scenarios import Stress, from_tables, run

__all__ = ["Stress", "from_tables", "load_closes", "moves", "replay", "reverse_stress", "run", "worst_moves"]
