"""CloudCatalog: find files in S3 archives by dataset and time (HelioCloud's spec)."""

from .client import CatalogError, CloudCatalog
from .spec import BucketCatalog, CatalogEntry, format_time, index_name, parse_time
from .writer import IndexedFile, catalog_entry, catalog_json, index_files

__all__ = [
    "BucketCatalog",
    "CatalogEntry",
    "CatalogError",
    "CloudCatalog",
    "IndexedFile",
    "catalog_entry",
    "catalog_json",
    "format_time",
    "index_files",
    "index_name",
    "parse_time",
]
