"""One Powertools router per resource, joined by `kubestep.api.app` with `include_router`."""
