"""``python -m webos``: the same as the ``webos`` command."""

from .cli import main

main()
