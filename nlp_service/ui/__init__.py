"""The analyst's dashboard at ``/ui``: pages, static files, the sign-in session and one overview aggregate."""
