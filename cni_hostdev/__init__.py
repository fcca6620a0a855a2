"""cni-hostdev: a CNI plugin that moves a host network device into a pod and back."""

from cni_hostdev._version import __version__

__all__ = ["__version__"]
