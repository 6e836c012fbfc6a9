"""`python -m mutator` is `mutate`."""

from mutator.cli import main

raise SystemExit(main())
