from sqlalchemy import MetaData

from services.runtime.migrations import run_env

run_env(MetaData())
