"""Django admin: a real tool for looking around. States are read-only here; control comes as actions
that ask for confirmation and a reason on a page of their own, and call the same functions as the API."""

from sequences.admin import project_admin, record_admin, run_admin  # noqa: F401  (each registers its pages)
