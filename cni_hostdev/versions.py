"""The CNI spec versions this plugin speaks (kept import-free: VERSION needs nothing else)."""

SUPPORTED_VERSIONS = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST = "1.1.0"
# The oldest cniVersion in which a command exists (the spec's own gates); the others are in all.
FIRST_VERSION = {"CHECK": "0.4.0", "GC": "1.1.0", "STATUS": "1.1.0"}
