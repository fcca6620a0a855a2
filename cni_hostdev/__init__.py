"""cni-hostdev: a CNI plugin that moves a host network device into a pod and back.

Every module a CNI call loads takes the names its annotations use under `TYPE_CHECKING`, not at run
time: `typing` would cost every exec ~5.8 ms (`make tricks`; the README's table)."""

__version__ = "0.1.0"  # the package's release (pyproject reads it); the CNI spec's versions are versions.py's

__all__ = ["__version__"]
