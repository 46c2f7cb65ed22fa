"""One module per endpoint; each adds its routes to the router."""
