"""Suite for the 'training' section of the source document; see ../shared/seed/SECTIONS.md."""
