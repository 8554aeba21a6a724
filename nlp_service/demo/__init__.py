"""Demo data: a seeded comment generator and a loader that posts JSONL to a running service."""
