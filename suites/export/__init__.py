"""Suite for the 'export' section of the source document; see ../shared/seed/SECTIONS.md."""
