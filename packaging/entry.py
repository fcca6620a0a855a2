from cni_hostdev.cli import main

main()
