"""`python -m streamer play URL ...`: see `streamer.main.cli`."""

from .main import cli

raise SystemExit(cli())
