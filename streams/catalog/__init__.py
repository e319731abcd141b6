"""What Pulse knows about the portal besides its events, kept on compacted topics: plugins
(``pulse.catalog.plugins``), people's groups (``pulse.catalog.people``) and each group's
population (``pulse.catalog.groups``). ``python -m streams catalog sync`` fills them from a
plugin file and Backstage's own catalog; every streams worker follows them as tables.
"""

from streams.errors import StreamsError


class CatalogError(StreamsError):
    """A catalog source is invalid or did not answer, or a topic could not be read or written.
    The message names the file, entity or URL."""
