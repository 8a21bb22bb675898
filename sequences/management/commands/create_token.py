from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from sequences.models import ApiToken


class Command(BaseCommand):
    help = "Print a new API token for a user (send it as x-token or Authorization: Bearer)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help="A name to recognise the token by (default: cli)")

    def handle(self, username, name, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"There is no user '{username}'.")
        _, plaintext = ApiToken.issue(user, name)
        self.stdout.write(plaintext)
