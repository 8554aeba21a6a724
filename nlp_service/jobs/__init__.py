"""Durable background jobs: one table, leased claims shared by several workers, progress, cancel, resume."""
