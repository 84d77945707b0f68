"""BrandPulse core: the one configuration schema and the one definition of a mention."""
