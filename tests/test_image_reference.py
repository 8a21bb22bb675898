"""One rule for the image a delivery deploys, read by the Bridge's trigger form, the CLI and the SDK."""

import pytest
from django.test import Client

from bosun.images import ImageError, image_reference
from sequences.models import SequenceExecution


@pytest.mark.parametrize("image,tag,reference", [
    ("docker.io/keptnexamples/carts", "0.12.0", "docker.io/keptnexamples/carts:0.12.0"),
    ("docker.io/keptnexamples/carts:0.12.0", "", "docker.io/keptnexamples/carts:0.12.0"),
    ("docker.io/keptnexamples/carts:0.12.0", "0.12.0", "docker.io/keptnexamples/carts:0.12.0"),  # said twice alike
    ("registry:5000/carts", "1.0", "registry:5000/carts:1.0"),  # a port is not a tag
    (" carts ", " 2 ", "carts:2"),
    ("carts@sha256:" + "a" * 64, "", "carts@sha256:" + "a" * 64),
])
def test_an_image_and_its_tag_make_one_reference(image, tag, reference):
    assert image_reference(image, tag) == reference


@pytest.mark.parametrize("image,tag,field,words", [
    ("docker.io/keptnexamples/carts:0.12.0", "0.13.0", "tag", "already ends with tag 0.12.0 and the tag says 0.13.0"),
    ("docker.io/keptnexamples/carts", "", "tag", "A delivery needs the tag to deploy"),
    ("registry:5000/carts", "", "tag", "A delivery needs the tag to deploy"),
    ("", "1.0", "image", "A delivery needs the image to deploy"),
    ("car ts", "1.0", "image", "no spaces"),
    ("carts", "1:0", "tag", "no spaces, colons or slashes"),
    ("carts@sha256:" + "a" * 64, "1.0", "tag", "pinned by its digest"),
])
def test_what_is_wrong_names_its_field(image, tag, field, words):
    with pytest.raises(ImageError) as caught:
        image_reference(image, tag)
    assert caught.value.field == field and words in caught.value.message


def test_the_bridge_takes_an_image_that_ends_with_its_tag_and_the_same_tag_once(admin_user, sockshop):
    browser = Client()
    browser.force_login(admin_user)
    form = {"target": "dev|delivery", "service": "carts", "image": "docker.io/keptnexamples/carts:0.12.0"}
    assert browser.post("/bridge/project/sockshop/trigger", {**form, "tag": "0.12.0"}).status_code == 302
    run = SequenceExecution.objects.get()
    assert run.input_data["configurationChange"]["values"]["image"] == "docker.io/keptnexamples/carts:0.12.0"
    refused = browser.post("/bridge/project/sockshop/trigger", {**form, "tag": "0.13.0"})
    assert refused.status_code == 400
    assert "already ends with tag 0.12.0 and the tag says 0.13.0" in refused.content.decode()
    assert SequenceExecution.objects.count() == 1
