"""Storage adapters of the access service: SQLAlchemy models, migrations, repositories."""
