"""Suite for the 'amp' section of the source document; see ../shared/seed/SECTIONS.md."""
