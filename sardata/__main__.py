"""``python -m sardata``: the same entry point as the ``sardata`` script."""

from sardata.cli import main

main()
