"""Suite for the 'autograd' section of the source document; see ../shared/seed/SECTIONS.md."""
