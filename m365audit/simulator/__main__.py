"""python -m m365audit.simulator: serve a generated tenant on 127.0.0.1, or --export it as fixtures."""

from m365audit.simulator.server import main

main()
