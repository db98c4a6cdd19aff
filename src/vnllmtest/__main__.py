"""`python -m vnllmtest compare ...`: the same as the `vnllmtest` command."""

from vnllmtest.cli import main

raise SystemExit(main())
