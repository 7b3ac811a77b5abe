"""Suite for the 'memory' section of the source document; see ../shared/seed/SECTIONS.md."""
