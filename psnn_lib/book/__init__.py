"""The book machinery: profiles, records, tables, claims, the runner, the site build and the CLI."""
