"""``python -m oauth_server``: the ``oauth-server`` command (``oauth_server.cli``)."""

from oauth_server.cli import main

if __name__ == "__main__":
    main()
