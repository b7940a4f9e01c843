"""One root for every error the Lever tooling raises on purpose."""


class LeverError(Exception):
    """A problem the user can act on; the CLI prints it as one line and exits non-zero."""


class ConfigError(LeverError):
    """A configuration file or setting is missing or invalid."""


class DeploymentError(LeverError):
    """No deployment, a conflicting deployment, or a malformed deployment record."""
