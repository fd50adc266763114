"""The system of record: settings, database engine and sessions, tables, repositories, audit chain."""
