"""Suite for the 'distributed' section of the source document; see ../shared/seed/SECTIONS.md."""
