"""FastAPI layer: parse requests, call ``AuthorizationServer``, render results. No rules live here."""
