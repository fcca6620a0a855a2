"""`python -m cni_hostdev`: the same entry as the frozen binary."""

from cni_hostdev.cli import main

if __name__ == "__main__":
    main()
