"""Entry point for ``python -m m365audit``."""

from m365audit.cli import main

main()
