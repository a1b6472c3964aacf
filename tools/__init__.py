"""Developer commands that are not part of the package: a headless browser driver and the screenshot maker."""
