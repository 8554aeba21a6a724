"""Insights over stored comments: topic volumes, NPS, and the Touchpoint Impact Map."""
