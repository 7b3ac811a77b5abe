"""Suite for the 'serialization' section of the source document; see ../shared/seed/SECTIONS.md."""
