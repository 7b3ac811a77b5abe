"""Suite for the 'data' section of the source document; see ../shared/seed/SECTIONS.md."""
