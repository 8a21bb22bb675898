from django.apps import AppConfig


class SequencesConfig(AppConfig):
    name = "sequences"
    verbose_name = "Sequences"
    default_auto_field = "django.db.models.BigAutoField"
