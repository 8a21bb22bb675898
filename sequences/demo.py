"""The demo project `make run` shows: sockshop, delivered through dev, staging and production."""

from .models import Project
from .projects import create_project

DEMO_SHIPYARD = """\
apiVersion: spec.keptn.sh/0.2.3
kind: Shipyard
metadata:
  name: shipyard-sockshop
spec:
  stages:
    - name: dev
      sequences:
        - name: delivery
          tasks:
            - name: deployment
              properties:
                deploymentstrategy: direct
            - name: test
              properties:
                teststrategy: functional
            - name: evaluation
            - name: release
    - name: staging
      sequences:
        - name: delivery
          triggeredOn:
            - event: dev.delivery.finished
          tasks:
            - name: deployment
              properties:
                deploymentstrategy: blue_green_service
            - name: test
              properties:
                teststrategy: performance
            - name: evaluation
            - name: release
    - name: production
      sequences:
        - name: delivery
          triggeredOn:
            - event: staging.delivery.finished
          tasks:
            - name: deployment
              properties:
                deploymentstrategy: blue_green_service
            - name: test
              properties:
                teststrategy: performance
            - name: evaluation
            - name: release
        - name: rollback
          triggeredOn:
            - event: production.delivery.finished
              selector:
                match:
                  result: fail
          tasks:
            - name: rollback
"""


def ensure_demo_project() -> tuple[Project, bool]:
    """Create `sockshop` with services carts and orders unless it exists. Returns (project, created)."""
    existing = Project.objects.filter(name="sockshop").first()
    if existing is not None:
        return existing, False
    return create_project("sockshop", DEMO_SHIPYARD, services=["carts", "orders"]), True
