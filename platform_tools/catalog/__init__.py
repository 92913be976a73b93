"""CloudCatalog: find files in S3 archives by dataset and time (HelioCloud's spec)."""

from platform_tools.catalog.client import CatalogError, CatalogRegistry, CloudCatalog, NoFilesError
from platform_tools.catalog.spec import (
    BucketCatalog,
    CatalogEntry,
    DatasetInfo,
    Parameter,
    Registry,
    RegistryEntry,
    format_time,
    index_name,
    info_name,
    parse_time,
)
from platform_tools.catalog.writer import (
    IndexedFile,
    catalog_entry,
    catalog_json,
    encode_indices,
    index_files,
    write_dataset,
)

__all__ = [
    "BucketCatalog",
    "CatalogEntry",
    "CatalogError",
    "CatalogRegistry",
    "CloudCatalog",
    "DatasetInfo",
    "IndexedFile",
    "NoFilesError",
    "Parameter",
    "Registry",
    "RegistryEntry",
    "catalog_entry",
    "catalog_json",
    "encode_indices",
    "format_time",
    "index_files",
    "index_name",
    "info_name",
    "parse_time",
    "write_dataset",
]
