"""Everything that talks to Postgres: connections, migrations, and the queue's SQL."""
