"""FastAPI layer: parse requests, call ``OAuthServer``, render results. No rules live here."""
