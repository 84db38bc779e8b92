"""How much room a label takes: text widths and heights for the pictures' sans-serif font.

Advance widths (1/1000 em) of DejaVu Sans, regular and bold, as Chromium draws the
pictures' font stack where no system UI font is installed (Linux, CI). DejaVu Sans is
among the widest common sans-serif faces, so the boxes are generous for the fonts of
macOS and Windows (San Francisco, Segoe UI). A character not listed counts as 1 em.
"""

from __future__ import annotations

from functools import lru_cache

ASCENT = 0.93  # of the font size, above the baseline
DESCENT = 0.24  # below the baseline
UNKNOWN = 1000

_REGULAR: dict[str, int] = {
    ' ': 318, '!': 401, '"': 460, '#': 838, '$': 636, '%': 950, '&': 780, "'": 275,
    '(': 390, ')': 390, '*': 500, '+': 838, ',': 318, '-': 361, '.': 318, '/': 337,
    '0': 636, '1': 636, '2': 636, '3': 636, '4': 636, '5': 636, '6': 636, '7': 636,
    '8': 636, '9': 636, ':': 337, ';': 337, '<': 838, '=': 838, '>': 838, '?': 531,
    '@': 1000, 'A': 709, 'B': 686, 'C': 698, 'D': 770, 'E': 632, 'F': 575, 'G': 775,
    'H': 752, 'I': 295, 'J': 295, 'K': 656, 'L': 557, 'M': 863, 'N': 748, 'O': 787,
    'P': 603, 'Q': 787, 'R': 695, 'S': 635, 'T': 595, 'U': 732, 'V': 684, 'W': 989,
    'X': 685, 'Y': 611, 'Z': 685, '[': 390, '\\': 337, ']': 390, '^': 838, '_': 500,
    '`': 500, 'a': 613, 'b': 635, 'c': 550, 'd': 635, 'e': 615, 'f': 344, 'g': 635,
    'h': 634, 'i': 278, 'j': 278, 'k': 579, 'l': 278, 'm': 974, 'n': 634, 'o': 612,
    'p': 635, 'q': 635, 'r': 395, 's': 521, 't': 392, 'u': 634, 'v': 592, 'w': 818,
    'x': 592, 'y': 592, 'z': 525, '{': 636, '|': 337, '}': 636, '~': 838, '✓': 838,
    '✗': 838, '■': 945, '□': 945, '↻': 838, '✂': 838, '◆': 769, '⧉': 600, '…': 1000,
    '⚠': 896, '†': 500, '▶': 769, '↶': 838, '⏸': 1248, '→': 838, '✝': 838, '←': 838,
    '↺': 838, '●': 873, '○': 873, '×': 838, '·': 318, '—': 1000, '–': 500, '‘': 318,
    '’': 318, '“': 518, '”': 518, 'é': 615,
}

_BOLD: dict[str, int] = {
    ' ': 348, '!': 456, '"': 521, '#': 838, '$': 696, '%': 1002, '&': 872, "'": 306,
    '(': 457, ')': 457, '*': 523, '+': 838, ',': 380, '-': 415, '.': 380, '/': 365,
    '0': 696, '1': 696, '2': 696, '3': 696, '4': 696, '5': 696, '6': 696, '7': 696,
    '8': 696, '9': 696, ':': 400, ';': 400, '<': 838, '=': 838, '>': 838, '?': 580,
    '@': 1000, 'A': 774, 'B': 762, 'C': 734, 'D': 830, 'E': 683, 'F': 683, 'G': 821,
    'H': 837, 'I': 372, 'J': 372, 'K': 775, 'L': 637, 'M': 995, 'N': 837, 'O': 850,
    'P': 733, 'Q': 850, 'R': 770, 'S': 680, 'T': 703, 'U': 812, 'V': 774, 'W': 1103,
    'X': 771, 'Y': 724, 'Z': 725, '[': 457, '\\': 365, ']': 457, '^': 838, '_': 500,
    '`': 500, 'a': 675, 'b': 716, 'c': 593, 'd': 716, 'e': 678, 'f': 405, 'g': 716,
    'h': 712, 'i': 343, 'j': 343, 'k': 665, 'l': 343, 'm': 1042, 'n': 712, 'o': 687,
    'p': 716, 'q': 716, 'r': 493, 's': 595, 't': 478, 'u': 712, 'v': 652, 'w': 924,
    'x': 645, 'y': 652, 'z': 582, '{': 712, '|': 365, '}': 712, '~': 838, '✓': 838,
    '✗': 838, '■': 945, '□': 945, '↻': 838, '✂': 838, '◆': 769, '⧉': 600, '…': 1000,
    '⚠': 896, '†': 500, '▶': 769, '↶': 838, '⏸': 1248, '→': 838, '✝': 838, '←': 838,
    '↺': 838, '●': 873, '○': 873, '×': 838, '·': 380, '—': 1000, '–': 500, '‘': 380,
    '’': 380, '“': 657, '”': 657, 'é': 678,
}


@lru_cache(maxsize=4096)
def text_width(text: str, size: float, bold: bool = False) -> float:
    """The width in pixels of ``text`` at font ``size`` (px), rounded up a little."""
    table = _BOLD if bold else _REGULAR
    return sum(table.get(ch, UNKNOWN) for ch in text) * size / 1000 * 1.02 + 0.5


def text_box(x: float, baseline: float, text: str, size: float, bold: bool = False,
             anchor: str = "start") -> tuple[float, float, float, float]:
    """``(left, top, right, bottom)`` of ``text`` drawn at ``x`` (per ``anchor``: start,
    middle or end) on ``baseline``."""
    w = text_width(text, size, bold)
    left = x if anchor == "start" else x - w / 2 if anchor == "middle" else x - w
    return (left, baseline - ASCENT * size, left + w, baseline + DESCENT * size)
