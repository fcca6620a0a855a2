"""cni-hostdev: a CNI plugin that moves a host network device into a pod and back."""

__version__ = "0.1.0"  # the package's release (pyproject reads it); the CNI spec's versions are versions.py's

__all__ = ["__version__"]
