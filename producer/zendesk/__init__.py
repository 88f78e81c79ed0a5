"""Reading Zendesk's incremental ticket export: client, auth, parsing, rate budget."""

from producer.zendesk.auth import ApiTokenAuth, OAuthBearer, OAuthRefreshing, TokenPair
from producer.zendesk.client import ExportClient
from producer.zendesk.options import ExportOptions
from producer.zendesk.start import parse_start

__all__ = [
    "ApiTokenAuth",
    "ExportClient",
    "ExportOptions",
    "OAuthBearer",
    "OAuthRefreshing",
    "TokenPair",
    "parse_start",
]
