"""The HTTP collector Backstage frontends post to."""
