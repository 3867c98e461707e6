"""Small reusable pieces: figure formatting and text bars (no SDK calls here)."""

from .bars import bar_chart, level, quota_bar

__all__ = ["bar_chart", "level", "quota_bar"]
