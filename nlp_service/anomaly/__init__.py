"""Topic-volume anomaly detection (the "Discover" feature); the pure algorithms live in ``detectors``."""
