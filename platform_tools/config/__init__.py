"""platform.yaml: the one configuration model, its loader and its schema."""

from platform_tools.config.loader import ConfigError, ConfigIssue, load_platform, parse_platform
from platform_tools.config.models import (
    Archive,
    DaskGatewayConfig,
    Group,
    HubConfig,
    LocalArchive,
    LocalPlatform,
    PlatformConfig,
    Profile,
)

__all__ = [
    "Archive",
    "ConfigError",
    "ConfigIssue",
    "DaskGatewayConfig",
    "Group",
    "HubConfig",
    "LocalArchive",
    "LocalPlatform",
    "PlatformConfig",
    "Profile",
    "load_platform",
    "parse_platform",
]
