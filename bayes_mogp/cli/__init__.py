"""Command-line interface: ``bayes-mogp <command>``; one module per command (see :mod:`.main`)."""
