"""The system of record: settings, engine and sessions, tables, repositories, audit chain."""
