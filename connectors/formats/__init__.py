"""Format extraction shared by every connector, by media type and suffix."""
