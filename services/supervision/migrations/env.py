from services.common.migrate import run_migrations

run_migrations()
