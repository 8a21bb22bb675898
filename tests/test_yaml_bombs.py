"""YAML alias bombs in shipyards are refused at once, before they expand."""

from sequences.models import Project


def test_a_yaml_alias_bomb_is_refused_at_once(admin_api, db):
    lines = ["apiVersion: spec.keptn.sh/0.2.3", "kind: Shipyard", "metadata: {name: bomb}", "x0: &x0 [a, a, a, a]"]
    for i in range(1, 12):
        lines.append(f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 4) + "]")  # 4^12 nodes when walked
    lines.append("spec: {stages: [{name: dev, sequences: [{name: s, tasks: [{name: t, properties: *x11}]}]}]}")
    # refused while the nodes are counted, before anything is built (a test run that hangs here has the bug)
    response = admin_api.post("/api/controlPlane/v1/project", {"name": "bomb", "shipyard": "\n".join(lines)})
    assert response.status_code == 400
    assert "expands to more than" in response.json()["message"]
    assert not Project.objects.filter(name="bomb").exists()


def test_too_many_aliases_are_refused(admin_api, db):
    aliases = ", ".join(["*a"] * 101)
    shipyard = f"apiVersion: spec.keptn.sh/0.2.3\nkind: Shipyard\nmetadata: {{name: p}}\na: &a 1\nb: [{aliases}]\n"
    response = admin_api.post("/api/controlPlane/v1/project", {"name": "aliases", "shipyard": shipyard})
    assert response.status_code == 400
    assert "more than 100 YAML aliases" in response.json()["message"]
