"""The robots exclusion protocol (RFC 9309) as a judge reads it: our own matcher, product tokens, the store."""

from abusedesk.robots.matcher import RobotsTxt, Verdict, normalise_path, path_of
from abusedesk.robots.tokens import is_product_token, product_tokens

__all__ = ["RobotsTxt", "Verdict", "is_product_token", "normalise_path", "path_of", "product_tokens"]
