"""Ray 2.60 clusters use token authentication: send the token when one is at hand, never touch it."""
from __future__ import annotations


def use_token_if_present() -> None:
    """`ray.init(address=...)`, Ray Client and the job client send the cluster's token only in `token` mode:
    turn that mode on when Ray's own loader finds a token (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH,
    ~/.ray/auth_token), the way `ray start` does, unless RAY_AUTH_MODE says otherwise. The token itself
    is never read here, printed or stored."""
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token authentication
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
