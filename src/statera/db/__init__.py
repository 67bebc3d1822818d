"""Persistence: SQLAlchemy 2 models, the Database object, repositories and migrations."""
