"""Suite for the 'tensors' section of the source document; see ../shared/seed/SECTIONS.md."""
