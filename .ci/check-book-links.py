#!/usr/bin/env python3
"""Check the book's internal links after `mdbook build book`.

For every chapter in book/src:
- each relative Markdown link `[text](page.md)` / `(page.md#anchor)` / `(#anchor)` must
  name a chapter that exists, and the anchor must be an `id` in the HTML mdBook built
  for that chapter (so heading renames are caught);
- each `{{#include path}}` must name a file that exists;
- each chapter must be listed in SUMMARY.md (an unlisted page is never built).
Links inside code blocks and inline code are ignored; absolute URLs are not fetched.
Exits non-zero, listing every broken link, if any is found.
"""
import html
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "book")
SRC = os.path.join(ROOT, "src")
OUT = os.path.join(ROOT, "book")

LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INCLUDE = re.compile(r"\{\{#(?:include|rustdoc_include)\s+([^}\s:]+)[^}]*\}\}")
ID = re.compile(r'\bid="([^"]+)"')
INLINE_CODE = re.compile(r"`+[^`]*`+")


def prose_lines(text):
    """Lines outside fenced code blocks, with inline code removed."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip()
        if fence is None and (stripped.startswith("```") or stripped.startswith("~~~")):
            fence = stripped[:3]
            continue
        if fence is not None:
            if stripped.startswith(fence):
                fence = None
            continue
        yield number, INLINE_CODE.sub("", line)


def html_ids(chapter, cache={}):
    if chapter not in cache:
        path = os.path.join(OUT, os.path.splitext(chapter)[0] + ".html")
        if not os.path.exists(path):
            cache[chapter] = None
        else:
            with open(path, encoding="utf-8") as f:
                cache[chapter] = {html.unescape(i) for i in ID.findall(f.read())}
    return cache[chapter]


def main():
    if not os.path.isdir(OUT):
        sys.exit("book/book is missing: run `mdbook build book` first")
    errors = []
    chapters = sorted(
        os.path.relpath(os.path.join(d, f), SRC)
        for d, _, files in os.walk(SRC)
        for f in files
        if f.endswith(".md")
    )
    with open(os.path.join(SRC, "SUMMARY.md"), encoding="utf-8") as f:
        summary = f.read()
    listed = {os.path.normpath(m.group(1)) for m in LINK.finditer(summary)}
    for chapter in chapters:
        if chapter != "SUMMARY.md" and chapter not in listed:
            errors.append(f"{chapter}: not listed in SUMMARY.md")

    for chapter in chapters:
        with open(os.path.join(SRC, chapter), encoding="utf-8") as f:
            text = f.read()
        here = os.path.dirname(chapter)
        for m in INCLUDE.finditer(text):
            target = os.path.normpath(os.path.join(SRC, here, m.group(1)))
            if not os.path.exists(target):
                errors.append(f"{chapter}: {{{{#include {m.group(1)}}}}}: no such file")
        for number, line in prose_lines(text):
            for m in LINK.finditer(line):
                target = m.group(1)
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                    continue
                page, _, anchor = target.partition("#")
                page = os.path.normpath(os.path.join(here, page)) if page else chapter
                where = f"{chapter}:{number}: ({target})"
                if not os.path.exists(os.path.join(SRC, page)):
                    errors.append(f"{where}: no such chapter {page}")
                    continue
                if anchor and page.endswith(".md"):
                    ids = html_ids(page)
                    if ids is None:
                        errors.append(f"{where}: {page} was not built (is it in SUMMARY.md?)")
                    elif anchor not in ids:
                        errors.append(f"{where}: no heading with id #{anchor} in {page}")
    for e in errors:
        print(e)
    checked = len(chapters)
    if errors:
        sys.exit(f"{len(errors)} broken link(s) in {checked} chapter(s)")
    print(f"book links: {checked} chapters, every internal link and include resolves")


if __name__ == "__main__":
    main()
