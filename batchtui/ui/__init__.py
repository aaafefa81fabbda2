"""The Textual dashboard: a thin front over `batchtui.core`. Start it with `make_app`."""
