"""``python -m harness fuzz | replay | show``: see :mod:`harness.cli`."""

from .cli import main

raise SystemExit(main())
