"""A job's output as the log viewer shows it: lines of styled runs, read from the ANSI escape codes that
build tools and test runners write (colours, bold, dim, italic, underline). Other escape sequences (cursor
moves, erasing, window titles) are dropped. The template renders the runs; no HTML is built here."""

import re
from dataclasses import dataclass

# CSI sequences (ESC [ params final), OSC sequences (ESC ] ... BEL or ESC \), and lone two-byte escapes.
ESCAPE = re.compile(r"\x1b\[([0-9;:?]*)([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # what is left of other control characters after a line's \r

COLOURS = ("black", "red", "green", "yellow", "blue", "magenta", "cyan", "white")


@dataclass(frozen=True)
class Style:
    fg: str = ""
    bg: str = ""
    bold: bool = False
    dim: bool = False
    italic: bool = False
    underline: bool = False

    def classes(self) -> str:
        names = [f"fg-{self.fg}" if self.fg else "", f"bg-{self.bg}" if self.bg else "",
                 "b" if self.bold else "", "d" if self.dim else "", "i" if self.italic else "",
                 "u" if self.underline else ""]
        return " ".join(n for n in names if n)


PLAIN = Style()


def _apply(style: Style, params: str) -> Style:
    """One SGR sequence (ESC [ ... m) applied to the style in force."""
    codes = [int(p) if p.isdigit() else 0 for p in params.replace(":", ";").split(";")] if params else [0]
    fields = style.__dict__.copy()
    index = 0
    while index < len(codes):
        code = codes[index]
        if code == 0:
            fields = PLAIN.__dict__.copy()
        elif code in (1, 2, 3, 4):
            fields[{1: "bold", 2: "dim", 3: "italic", 4: "underline"}[code]] = True
        elif code == 22:
            fields["bold"] = fields["dim"] = False
        elif code in (23, 24):
            fields["italic" if code == 23 else "underline"] = False
        elif 30 <= code <= 37 or 90 <= code <= 97:
            fields["fg"] = ("bright-" if code >= 90 else "") + COLOURS[code % 10]
        elif 40 <= code <= 47 or 100 <= code <= 107:
            fields["bg"] = ("bright-" if code >= 100 else "") + COLOURS[code % 10]
        elif code in (39, 49):
            fields["fg" if code == 39 else "bg"] = ""
        elif code in (38, 48):  # 256 colours (5;n) or true colour (2;r;g;b): the nearest of the 16
            key = "fg" if code == 38 else "bg"
            if codes[index + 1:index + 2] == [5] and index + 2 < len(codes):
                fields[key] = _nearest_of_256(codes[index + 2])
                index += 2
            elif codes[index + 1:index + 2] == [2] and index + 4 < len(codes):
                fields[key] = _nearest_of_rgb(*codes[index + 2:index + 5])
                index += 4
        index += 1
    return Style(**fields)


def _nearest_of_256(n: int) -> str:
    if n < 16:
        return ("bright-" if n >= 8 else "") + COLOURS[n % 8]
    if n >= 232:  # the grey ramp
        return "white" if n >= 244 else "bright-black"
    n -= 16
    return _nearest_of_rgb(n // 36 * 51, n // 6 % 6 * 51, n % 6 * 51)


def _nearest_of_rgb(r: int, g: int, b: int) -> str:
    bits = (r > 127) | (g > 127) << 1 | (b > 127) << 2
    return COLOURS[bits] if bits else "bright-black" if max(r, g, b) > 63 else "black"


def _line_text(line: str) -> str:
    """What a terminal would leave of a line a progress bar redrew with carriage returns: the last draw."""
    if "\r" in line:
        line = line.rstrip("\r").rsplit("\r", 1)[-1]
    return line


def styled_lines(text: str) -> list[list[tuple[str, str]]]:
    """Each line of `text` as (classes, text) runs; a style set on one line carries on to the next."""
    if not text:
        return []
    style = PLAIN
    lines = []
    for raw in text.split("\n"):
        runs: list[tuple[str, str]] = []
        position = 0
        line = _line_text(raw)
        for match in ESCAPE.finditer(line):
            if match.start() > position:
                runs.append((style.classes(), CONTROL.sub("", line[position:match.start()])))
            if match.group(2) == "m":
                style = _apply(style, match.group(1))
            position = match.end()
        if position < len(line):
            runs.append((style.classes(), CONTROL.sub("", line[position:])))
        lines.append([run for run in runs if run[1]])
    if lines and not lines[-1] and text.endswith("\n"):
        lines.pop()  # the newline that ends the last line starts no line of its own
    return lines


def plain(text: str) -> str:
    """The text without its escape codes (for the sequence page's short tail and for searching)."""
    return "\n".join("".join(part for _, part in runs) for runs in styled_lines(text))
