"""Small widgets and the cell renderers of the dashboard's screens."""
