"""The portal's pages, one module per kind of person, on one shared ``Web`` context."""
