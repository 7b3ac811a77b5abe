"""Suite for the 'ecosystem' section of the source document; see ../shared/seed/SECTIONS.md."""
