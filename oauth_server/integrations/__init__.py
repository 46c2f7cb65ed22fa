"""Adapters from our rules to other libraries' interfaces. Each imports its library; the core never does."""
