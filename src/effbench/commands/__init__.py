"""Command-line commands that sit above every other layer (they run cells and render results):
`bench profile`, `bench ab`. The CLI loads them when they are used."""
