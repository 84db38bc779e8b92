"""``python -m txlib``: the command line (see :mod:`txlib.cli`)."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
