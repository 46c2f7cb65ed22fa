"""One module per grant type. Each validates, consumes atomically, then mints through ``issue``."""
