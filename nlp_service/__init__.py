"""nlp_service: text analytics for customer feedback."""

__version__ = "0.1.0"
