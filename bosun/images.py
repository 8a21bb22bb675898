"""How an image and a tag make the image reference a delivery deploys: one rule for the Bridge's trigger form,
the CLI and the SDK. The tag may be given on its own or at the end of the image, not both ways differently."""


class ImageError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def _tag_of(image: str) -> str:
    last = image.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last and "@" not in last else ""


def image_reference(image: str, tag: str | None = None) -> str:
    """`image` with its tag, e.g. docker.io/keptnexamples/carts:0.11.1 (from image + tag, or an image that names
    its tag or digest). ImageError names the field that is wrong and says why."""
    image, tag = (image or "").strip(), (tag or "").strip()
    if not image:
        raise ImageError("image", "A delivery needs the image to deploy, e.g. docker.io/keptnexamples/carts.")
    if any(c.isspace() for c in image):
        raise ImageError("image", "An image name has no spaces.")
    if tag and (any(c.isspace() for c in tag) or ":" in tag or "/" in tag):
        raise ImageError("tag", "A tag has no spaces, colons or slashes, e.g. 0.11.1.")
    named = _tag_of(image)
    if "@" in image.rsplit("/", 1)[-1]:  # pinned by digest
        if tag:
            raise ImageError("tag", "The image is pinned by its digest; leave the tag empty.")
        return image
    if named and tag and named != tag:
        raise ImageError("tag", f"The image already ends with tag {named} and the tag says {tag}: give it once.")
    if not named and not tag:
        raise ImageError("tag", "A delivery needs the tag to deploy, e.g. 0.11.1 (or end the image with :0.11.1).")
    return image if named else f"{image}:{tag}"
