"""The ``fanout`` command: :mod:`fanout.cli.main` lists the command modules."""
