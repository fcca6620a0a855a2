"""The node tools, for when the binary runs with no CNI_COMMAND: `cli` parses the command line;
`probe` lives in cni_hostdev/probe.py, and `inventory`, `doctor`, `install`, `repair` (with
`metrics` and `configs`) each in a module of their own here. Nothing here: a face, not a door."""
