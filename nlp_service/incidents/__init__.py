"""Incidents: related alerts grouped into one unit with one headline, lifecycle and event stream."""
