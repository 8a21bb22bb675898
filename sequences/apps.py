from django.apps import AppConfig


class SequencesConfig(AppConfig):
    name = "sequences"
    verbose_name = "Sequences"

    def ready(self):
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from django.db.models.signals import m2m_changed, post_delete, post_save

        from sequences.api.auth import forget_tokens
        from sequences.models import ApiToken
        from sequences.notices import outbox as webhooks

        # A token's cached lookup goes as soon as the token, its user or their permissions change.
        user = get_user_model()
        for model in (ApiToken, user, Group):
            post_save.connect(forget_tokens, sender=model, dispatch_uid=f"forget-tokens-save-{model.__name__}")
            post_delete.connect(forget_tokens, sender=model, dispatch_uid=f"forget-tokens-delete-{model.__name__}")
        for through in (user.user_permissions.through, user.groups.through, Group.permissions.through):
            m2m_changed.connect(forget_tokens, sender=through, dispatch_uid=f"forget-tokens-m2m-{through.__name__}")
        # Which projects have webhooks is cached per process; a change here is seen at the next event.
        post_save.connect(webhooks.forget, sender=webhooks.Webhook, dispatch_uid="forget-webhooks-save")
        post_delete.connect(webhooks.forget, sender=webhooks.Webhook, dispatch_uid="forget-webhooks-delete")
