"""The access service's pure domain: projects, pseudonyms, disclosure control, audit chain."""
