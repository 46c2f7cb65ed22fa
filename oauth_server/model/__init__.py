"""Storage models: the abstract interface and the built-in implementations."""

from oauth_server.model.base import OAuthServerModel
from oauth_server.model.memory import MemoryOAuthServerModel

__all__ = ["MemoryOAuthServerModel", "OAuthServerModel"]
