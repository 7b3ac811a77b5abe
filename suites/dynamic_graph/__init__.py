"""Suite for the 'dynamic_graph' section of the source document; see ../shared/seed/SECTIONS.md."""
