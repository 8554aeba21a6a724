"""Comments: ingest with analysis, storage, listing and deletion."""
