import time

started = time.time()  # before any import of ours: `make bench --profile` splits start-up from imports

from cni_hostdev.cli import main  # noqa: E402

main(started)
