"""Suite for the 'nn' section of the source document; see ../shared/seed/SECTIONS.md."""
