"""``python -m neuript``: the same command line as ``neuript``."""

from neuript.cli import main

if __name__ == "__main__":
    main()
