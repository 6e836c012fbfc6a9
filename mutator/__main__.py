"""`python -m mutator` is `mutate`."""

from mutator.cli.app import main

raise SystemExit(main())
