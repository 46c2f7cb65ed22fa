"""The ``oauth-server`` operator command: migrations, clients, grants, tokens, keys, housekeeping.

    oauth-server migrate --database-url sqlite+aiosqlite:///./oauth.db
    oauth-server clients create --name billing --redirect-uri https://app.example/cb
    oauth-server clients list --json

One of the three places that read the environment (design.md): ``DATABASE_URL``,
``OAUTH_ISSUER``, ``KEY_ENCRYPTION_SECRET``, ``OAUTH_SCOPES_SUPPORTED``, each also an option.
Commands use the model's public verbs only, so they work on any deployment's database. Exit
codes: 0 done, 1 failed, 2 usage or configuration error, 3 database unreachable or not
migrated (``common``).
"""

from __future__ import annotations

import sys

import click

from oauth_server.cli.client_commands import clients_group
from oauth_server.cli.common import first_line
from oauth_server.cli.database import current_command, migrate_command, purge_command
from oauth_server.cli.grant_commands import grants_group, tokens_group
from oauth_server.cli.key_commands import keys_group, token_command

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def cli() -> None:
    """Operate an oauth_server deployment: its database, clients, grants and signing keys.

    Exit codes: 0 ok, 1 the operation failed (e.g. no such client), 2 usage or configuration
    error, 3 database unreachable or not migrated. Times are ISO 8601 UTC.
    """


for command in (migrate_command, current_command, clients_group, grants_group, tokens_group, keys_group,
                token_command, purge_command):
    cli.add_command(command)


def main() -> None:
    """The console script: click's handling, and one line instead of a traceback for anything else."""
    try:
        status = cli.main(prog_name="oauth-server", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(1)
    except Exception as exc:
        click.echo(f"Error: {first_line(exc)}", err=True)
        sys.exit(1)
    sys.exit(status if isinstance(status, int) else 0)
