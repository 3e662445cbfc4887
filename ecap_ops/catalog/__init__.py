"""Layer 1: the declared topics, read into typed, validated objects. Pure."""

from ecap_ops.catalog.loader import default_catalog_path, load_catalog, parse_catalog
from ecap_ops.catalog.model import Catalog, ExpectedVolume, LagThresholds, TopicSpec

__all__ = [
    "Catalog",
    "ExpectedVolume",
    "LagThresholds",
    "TopicSpec",
    "default_catalog_path",
    "load_catalog",
    "parse_catalog",
]
