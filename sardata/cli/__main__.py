"""``python -m sardata.cli``: the same entry point as the ``sardata`` script (used by ``torchrun -m``)."""

from sardata.cli import main

main()
